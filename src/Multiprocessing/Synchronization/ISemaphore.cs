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
