namespace Multiprocessing.Dummy;

/// <summary>A reentrant lock for threads with the API of <see cref="Multiprocessing.RLock"/> (Python's <c>threading.RLock</c>): owned by the thread that acquired it.</summary>
public sealed class RLock : ILock, IScopeRelease, IOwnedLock, IDisposable
{
    private readonly SemaphoreSlim _semaphore = new(1, 1);
    private int _owner;
    private int _count;

    /// <inheritdoc/>
    public bool IsLocked => _semaphore.CurrentCount == 0;

    /// <summary>Whether the calling thread owns the lock.</summary>
    public bool IsHeldByCurrentThread => Volatile.Read(ref _owner) == Environment.CurrentManagedThreadId;

    /// <summary>How many times the owner has acquired the lock without releasing it; 0 when free.</summary>
    public int RecursionCount => Volatile.Read(ref _owner) == 0 ? 0 : _count;

    bool IOwnedLock.IsHeldByCaller => IsHeldByCurrentThread;

    /// <inheritdoc/>
    public void Acquire() => TryAcquire(Timeout.InfiniteTimeSpan);

    /// <inheritdoc/>
    public bool TryAcquire(TimeSpan timeout = default)
    {
        int thread = Environment.CurrentManagedThreadId;
        if (_owner == thread)
        {
            _count++;
            return true;
        }

        if (!_semaphore.Wait(Waits.Milliseconds(timeout)))
        {
            return false;
        }

        Own(thread, 1);
        return true;
    }

    /// <summary>Acquires the lock for the calling thread without blocking it.</summary>
    public Task AcquireAsync(CancellationToken cancellationToken = default)
    {
        int thread = Environment.CurrentManagedThreadId;
        if (_owner == thread)
        {
            _count++;
            return Task.CompletedTask;
        }

        return _semaphore.Wait(0, CancellationToken.None) ? Own(thread) : AcquireSlowAsync(thread, cancellationToken);
    }

    /// <summary>Releases one level of ownership; the lock is free when the last one is released.</summary>
    /// <exception cref="SynchronizationLockException">The calling thread does not own the lock.</exception>
    public void Release()
    {
        if (!IsHeldByCurrentThread)
        {
            throw new SynchronizationLockException("Cannot release an RLock the calling thread does not own.");
        }

        if (--_count == 0)
        {
            Volatile.Write(ref _owner, 0);
            _semaphore.Release();
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
        int saved = _count;
        _count = 0;
        Volatile.Write(ref _owner, 0);
        _semaphore.Release();
        return saved;
    }

    async Task IOwnedLock.RestoreAsync(int saved, int thread)
    {
        await _semaphore.WaitAsync().ConfigureAwait(false);
        Own(thread, saved);
    }

    /// <summary>Frees the lock's wait handle, if one was made.</summary>
    public void Dispose() => _semaphore.Dispose();

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<RLock(owner={_owner}, count={RecursionCount})>";

    private Task Own(int thread)
    {
        Own(thread, 1);
        return Task.CompletedTask;
    }

    private void Own(int thread, int count)
    {
        _count = count;
        Volatile.Write(ref _owner, thread);
    }

    private async Task AcquireSlowAsync(int thread, CancellationToken cancellationToken)
    {
        await _semaphore.WaitAsync(cancellationToken).ConfigureAwait(false);
        Own(thread, 1);
    }
}
