namespace Multiprocessing;

/// <summary>A condition variable shared between processes (<see cref="Condition"/> and its twins).</summary>
public interface ICondition
{
    /// <summary>Acquires the underlying lock.</summary>
    void Acquire();

    /// <summary>Acquires the underlying lock within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryAcquire(TimeSpan timeout = default);

    /// <summary>Releases the underlying lock.</summary>
    void Release();

    /// <summary>Acquires the underlying lock and returns a scope that releases it.</summary>
    LockScope EnterScope();

    /// <summary>Releases the lock, waits for a notification or the timeout, and reacquires the lock; false on timeout.</summary>
    bool Wait(TimeSpan? timeout = null);

    /// <summary>Waits until <paramref name="predicate"/> is true (checked under the lock); returns its last value.</summary>
    bool WaitFor(Func<bool> predicate, TimeSpan? timeout = null);

    /// <summary>As <see cref="Wait"/>, without blocking the calling thread.</summary>
    Task<bool> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Wakes at most <paramref name="n"/> waiters, the longest waiting first.</summary>
    void Notify(int n = 1);

    /// <summary>Wakes every waiter.</summary>
    void NotifyAll();
}
