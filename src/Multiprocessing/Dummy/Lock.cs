namespace Multiprocessing.Dummy;

/// <summary>A lock for threads with the API of <see cref="Multiprocessing.Lock"/> (Python's <c>threading.Lock</c>): not reentrant, releasable by any thread.</summary>
public sealed class Lock : ILock, IScopeRelease, IOwnedLock, IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);

    /// <inheritdoc/>
    public bool IsLocked => _semaphore.CurrentCount == 0;

    bool IOwnedLock.IsHeldByCaller => IsLocked;

    /// <inheritdoc/>
    public void Acquire() => _semaphore.Wait();

    /// <inheritdoc/>
    public bool TryAcquire(TimeSpan timeout = default) => _semaphore.Wait(Waits.Milliseconds(timeout));

    /// <inheritdoc/>
    public Task AcquireAsync(CancellationToken cancellationToken = default) => _semaphore.WaitAsync(cancellationToken);

    /// <summary>Releases the lock (from any thread).</summary>
    /// <exception cref="SynchronizationLockException">The lock is not held.</exception>
    public void Release()
    {
        try
        {
            _semaphore.Release();
        }
        catch (SemaphoreFullException)
        {
            throw new SynchronizationLockException("Cannot release an unlocked lock.");
        }
    }

    /// <inheritdoc/>
    public LockScope EnterScope()
    {
        Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => Release();

    int IOwnedLock.ReleaseAll()
    {
        Release();
        return 1;
    }

    Task IOwnedLock.RestoreAsync(int saved, int thread) => _semaphore.WaitAsync();

    /// <summary>Frees the lock's wait handle, if one was made.</summary>
    public void Dispose() => _semaphore.Dispose();

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<Lock({(IsLocked ? "locked" : "unlocked")})>";
}
