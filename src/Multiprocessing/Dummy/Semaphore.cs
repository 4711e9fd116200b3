namespace Multiprocessing.Dummy;

/// <summary>A counting semaphore for threads with the API of <see cref="Multiprocessing.Semaphore"/> (Python's <c>threading.Semaphore</c>).</summary>
public class Semaphore : ISemaphore, IScopeRelease, IDisposable
{
    private readonly SemaphoreSlim _semaphore;

    /// <summary>Creates a semaphore whose count starts at <paramref name="initial"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initial"/> is negative.</exception>
    public Semaphore(int initial = 1)
        : this(initial, int.MaxValue)
    {
    }

    private protected Semaphore(int initial, int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initial);
        _semaphore = new SemaphoreSlim(initial, bound);
        Bound = bound;
    }

    /// <inheritdoc/>
    public int Value => _semaphore.CurrentCount;

    private int Bound { get; }

    /// <inheritdoc/>
    public void Acquire() => _semaphore.Wait();

    /// <inheritdoc/>
    public bool TryAcquire(TimeSpan timeout = default) => _semaphore.Wait(Waits.Milliseconds(timeout));

    /// <inheritdoc/>
    public Task AcquireAsync(CancellationToken cancellationToken = default) => _semaphore.WaitAsync(cancellationToken);

    /// <summary>Adds <paramref name="count"/> to the count, waking as many waiters.</summary>
    /// <exception cref="SemaphoreFullException">A <see cref="BoundedSemaphore"/> would pass its starting value.</exception>
    public void Release(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        try
        {
            _semaphore.Release(count);
        }
        catch (SemaphoreFullException)
        {
            throw new SemaphoreFullException($"Releasing {count} would take the {GetType().Name} past its limit of {Bound}.");
        }
    }

    /// <inheritdoc/>
    public LockScope EnterScope()
    {
        Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => Release();

    /// <summary>Frees the semaphore's wait handle, if one was made.</summary>
    public void Dispose()
    {
        _semaphore.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<{GetType().Name}(value={Value})>";
}
