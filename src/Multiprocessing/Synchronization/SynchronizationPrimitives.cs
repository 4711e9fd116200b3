namespace Multiprocessing;

/// <summary>A counting semaphore shared between processes (<see cref="Semaphore"/>, <see cref="BoundedSemaphore"/>, and their twins).</summary>
public interface ISemaphore
{
    /// <summary>The current count (Python's <c>get_value()</c>).</summary>
    int Value { get; }

    /// <summary>Blocks until the count is positive, then decrements it.</summary>
    void Acquire();

    /// <summary>Decrements the count if it becomes positive within <paramref name="timeout"/>; false otherwise.</summary>
    bool TryAcquire(TimeSpan timeout = default);

    /// <summary>Adds <paramref name="count"/> to the count, waking as many waiters.</summary>
    void Release(int count = 1);

    /// <summary>Acquires and returns a scope that releases once when disposed.</summary>
    LockScope EnterScope();

    /// <summary>Acquires without blocking the calling thread.</summary>
    Task AcquireAsync(CancellationToken cancellationToken = default);
}

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

/// <summary>An event flag shared between processes (<see cref="Event"/> and its twins).</summary>
public interface IEvent
{
    /// <summary>True once set, until cleared.</summary>
    bool IsSet { get; }

    /// <summary>Sets the flag and wakes every waiter.</summary>
    void Set();

    /// <summary>Clears the flag.</summary>
    void Clear();

    /// <summary>Waits until the flag is set or the timeout passes; returns the flag.</summary>
    bool Wait(TimeSpan? timeout = null);

    /// <summary>As <see cref="Wait"/>, without blocking the calling thread.</summary>
    Task<bool> WaitAsync(CancellationToken cancellationToken = default);
}

/// <summary>A barrier shared between processes (<see cref="Barrier"/> and its twins).</summary>
public interface IBarrier
{
    /// <summary>How many parties must arrive to pass.</summary>
    int Parties { get; }

    /// <summary>How many parties wait now.</summary>
    int NWaiting { get; }

    /// <summary>True when broken (by a timeout, <see cref="Abort"/>, a failed action or a dead party) until <see cref="Reset"/>.</summary>
    bool Broken { get; }

    /// <summary>Waits until all parties have arrived; returns this party's index in 0..Parties−1.</summary>
    int Wait(TimeSpan? timeout = null);

    /// <summary>As <see cref="Wait"/>, without blocking the calling thread.</summary>
    Task<int> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Breaks the barrier for the current waiters and makes it usable again.</summary>
    void Reset();

    /// <summary>Breaks the barrier: current and future waiters get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    void Abort();
}
