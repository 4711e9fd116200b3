using System.Runtime.CompilerServices;
using Multiprocessing.Platform;
using Multiprocessing.Pooling;

namespace Multiprocessing;

/// <summary>
/// The result of work submitted to a <see cref="Pool"/> (Python's <c>AsyncResult</c>): wait for it, read it, or await it.
/// </summary>
/// <typeparam name="T">The result's type.</typeparam>
public class AsyncResult<T>
{
    private readonly TaskCompletionSource<T> _source = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Action<T>? _callback;
    private readonly Action<Exception>? _errorCallback;

    internal AsyncResult(Action<T>? callback = null, Action<Exception>? errorCallback = null)
    {
        _callback = callback;
        _errorCallback = errorCallback;
    }

    /// <summary>The task, if its slot leaves this result for the first blocking waiter to receive (see <see cref="Lend"/>).</summary>
    private PoolJob? _lent;

    /// <summary>True once the work has completed, successfully or not.</summary>
    public bool Ready
    {
        get
        {
            Unlend(); // whoever polls will not block for it: the slot's thread receives it
            return _source.Task.IsCompleted;
        }
    }

    /// <summary>Whether it completed, without the side effect of <see cref="Ready"/> (for tests: a lent result must complete untouched).</summary>
    internal bool IsCompletedQuietly => _source.Task.IsCompleted;

    /// <summary>Whether the work completed without an exception.</summary>
    /// <exception cref="InvalidOperationException">The result is not ready yet.</exception>
    public bool Successful => Ready
        ? _source.Task.IsCompletedSuccessfully
        : throw new InvalidOperationException("The result is not ready yet: Successful is known only once Ready is true.");

    /// <summary>Waits for the result and returns it, or throws the exception the work ended with.</summary>
    /// <exception cref="RemoteException">The work threw in the worker.</exception>
    /// <exception cref="ProcessException">The worker running it died.</exception>
    /// <exception cref="TimeoutException">The work ran past its own timeout and was stopped.</exception>
    /// <exception cref="OperationCanceledException">The work was cancelled, or the pool terminated.</exception>
    public T Get()
    {
        ReceiveIfLent(null);
        return _source.Task.GetAwaiter().GetResult();
    }

    /// <summary>As <see cref="Get()"/>, giving up after <paramref name="timeout"/>.</summary>
    /// <exception cref="TimeoutException">The result was not ready within <paramref name="timeout"/>; the work goes on.</exception>
    public T Get(TimeSpan timeout)
        => Wait(timeout) ? Get() : throw new TimeoutException($"The result was not ready within {timeout}.");

    /// <summary>Waits until the result is ready or <paramref name="timeout"/> passes (null: forever); true if ready.</summary>
    public bool Wait(TimeSpan? timeout = null)
    {
        Deadline deadline = Deadline.After(timeout);
        if (_source.Task.IsCompleted)
        {
            return true;
        }

        ReceiveIfLent(deadline.IsInfinite ? null : deadline.Remaining);
        if (_source.Task.IsCompleted)
        {
            return true;
        }

        return deadline.IsInfinite
            ? ((IAsyncResult)_source.Task).AsyncWaitHandle.WaitOne()
            : ((IAsyncResult)_source.Task).AsyncWaitHandle.WaitOne(deadline.Remaining);
    }

    /// <summary>Lets <c>await</c> wait for the result.</summary>
    public TaskAwaiter<T> GetAwaiter()
    {
        Unlend();
        return _source.Task.GetAwaiter();
    }

    /// <summary>The result as a task.</summary>
    public Task<T> AsTask()
    {
        Unlend();
        return _source.Task;
    }

    /// <summary>
    /// The task went straight to an idle worker whose slot leaves its result to the first thread that blocks for it
    /// (<see cref="Get()"/>, <see cref="Wait"/>): that thread receives it itself, saving the wake-ups of a hand-over.
    /// </summary>
    internal void Lend(PoolJob job) => _lent = job;

    private void ReceiveIfLent(TimeSpan? within)
    {
        if (_lent is not null && !_source.Task.IsCompleted && Interlocked.Exchange(ref _lent, null) is { LentBy: { } slot } job)
        {
            slot.ReceiveLent(job, within);
        }
    }

    private void Unlend()
    {
        if (_lent is not null && Interlocked.Exchange(ref _lent, null) is { LentBy: { } slot } job)
        {
            slot.Unlend(job);
        }
    }

    /// <summary>Completes with a value: the callback runs first (as in Python), then waiters wake.</summary>
    internal void SetResult(T value)
    {
        if (_source.Task.IsCompleted)
        {
            return;
        }

        Run(_callback, value);
        _source.TrySetResult(value);
    }

    /// <summary>Completes with an exception: the error callback runs first, then waiters wake.</summary>
    internal void SetException(Exception exception)
    {
        if (_source.Task.IsCompleted)
        {
            return;
        }

        Run(_errorCallback, exception);
        if (exception is OperationCanceledException cancelled)
        {
            _source.TrySetCanceled(cancelled.CancellationToken);
        }
        else
        {
            _source.TrySetException(exception);
        }
    }

    private static void Run<TArgument>(Action<TArgument>? callback, TArgument argument)
    {
        try
        {
            callback?.Invoke(argument);
        }
        catch (Exception ex)
        {
            // As a callback is the caller's code running on the pool's thread, its failure must not stop the pool.
            Console.Error.WriteLine($"Multiprocessing: a pool callback threw: {ex}");
        }
    }
}
