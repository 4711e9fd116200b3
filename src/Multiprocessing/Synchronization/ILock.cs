namespace Multiprocessing;

/// <summary>
/// A lock that may be shared between processes: <see cref="Lock"/>, <see cref="RLock"/>, and the manager and thread-backed
/// twins (Python's lock protocol: <c>acquire</c>, <c>release</c>, <c>with lock:</c>).
/// </summary>
public interface ILock
{
    /// <summary>True while someone (any process or thread) holds the lock.</summary>
    bool IsLocked { get; }

    /// <summary>Blocks until the lock is acquired.</summary>
    void Acquire();

    /// <summary>Acquires the lock if it comes free within <paramref name="timeout"/> (zero: do not block; <see cref="Timeout.InfiniteTimeSpan"/>: forever).</summary>
    bool TryAcquire(TimeSpan timeout = default);

    /// <summary>Releases the lock.</summary>
    void Release();

    /// <summary>Acquires the lock and returns a scope that releases it when disposed (<c>using (lk.EnterScope()) { … }</c>).</summary>
    LockScope EnterScope();

    /// <summary>Acquires the lock without blocking the calling thread.</summary>
    Task AcquireAsync(CancellationToken cancellationToken = default);
}
