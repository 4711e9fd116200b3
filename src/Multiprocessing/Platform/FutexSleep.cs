namespace Multiprocessing.Platform;

/// <summary>
/// Lets a cancellation token interrupt a futex sleep (the blocking half of an async twin): cancelling wakes the word
/// the waiter sleeps on until the waiter has noticed, which closes the gap between its last check and the sleep.
/// </summary>
internal sealed unsafe class WaitCancellation : IDisposable
{
    private readonly CancellationToken _token;
    private readonly CancellationTokenRegistration _registration;
    private int* _word;
    private int _sleeping;

    public WaitCancellation(CancellationToken token)
    {
        _token = token;
        _registration = token.UnsafeRegister(static state => ((WaitCancellation)state!).Interrupt(), this);
    }

    /// <summary>The token this waiter observes.</summary>
    public CancellationToken Token => _token;

    /// <summary>True once cancellation was requested.</summary>
    public bool IsCancellationRequested => _token.IsCancellationRequested;

    public void Dispose() => _registration.Dispose();

    private void Enter(int* word)
    {
        _word = word;
        Interlocked.Exchange(ref _sleeping, 1); // a full fence: the canceller sees it or the waiter sees the cancellation
    }

    private void Leave() => Volatile.Write(ref _sleeping, 0);

    private void Interrupt()
    {
        SpinWait spinner = default;
        while (Volatile.Read(ref _sleeping) == 1)
        {
            Futex.WakeAll(_word); // others on the word wake too: for them it is a spurious wakeup, which they tolerate
            spinner.SpinOnce();
        }
    }

    /// <summary>
    /// <see cref="Futex.Wait"/>, interruptible by <paramref name="cancellation"/> (which then throws
    /// <see cref="OperationCanceledException"/>). Returns false only when the deadline passed.
    /// </summary>
    public static bool Sleep(int* word, int expected, Deadline deadline, WaitCancellation? cancellation)
    {
        if (cancellation is null)
        {
            return Futex.Wait(word, expected, deadline);
        }

        cancellation.Enter(word);
        try
        {
            cancellation._token.ThrowIfCancellationRequested();
            return Futex.Wait(word, expected, deadline);
        }
        finally
        {
            cancellation.Leave();
        }
    }
}
