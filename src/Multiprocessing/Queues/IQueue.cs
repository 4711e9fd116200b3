namespace Multiprocessing;

/// <summary>
/// A multi-producer, multi-consumer FIFO queue shared between processes (Python's <c>Queue</c>): the shared-memory
/// <see cref="Queue{T}"/>, a manager's <c>Queue&lt;T&gt;()</c> proxy, and the thread-backed twin.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
public interface IQueue<T>
{
    /// <summary>About how many items are queued (Python's <c>qsize()</c>).</summary>
    int Count { get; }

    /// <summary>Whether the queue looks empty now.</summary>
    bool IsEmpty { get; }

    /// <summary>Whether a bounded queue looks full now.</summary>
    bool IsFull { get; }

    /// <summary>Adds <paramref name="item"/>, waiting for room in a bounded queue.</summary>
    void Put(T item);

    /// <summary>Adds <paramref name="item"/>, waiting up to <paramref name="timeout"/> for room; <see cref="QueueFullException"/> after it.</summary>
    void Put(T item, TimeSpan timeout);

    /// <summary>Adds <paramref name="item"/> if there is room within <paramref name="timeout"/> (zero: do not wait).</summary>
    bool TryPut(T item, TimeSpan timeout = default);

    /// <summary>Removes and returns the oldest item, waiting for one.</summary>
    T Get();

    /// <summary>Removes and returns the oldest item, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> after it.</summary>
    T Get(TimeSpan timeout);

    /// <summary>Removes the oldest item if one arrives within <paramref name="timeout"/> (zero: do not wait).</summary>
    bool TryGet(out T item, TimeSpan timeout = default);

    /// <summary>Adds <paramref name="item"/> without blocking a thread.</summary>
    ValueTask PutAsync(T item, CancellationToken cancellationToken = default);

    /// <summary>Removes and returns the oldest item without blocking a thread.</summary>
    ValueTask<T> GetAsync(CancellationToken cancellationToken = default);

    /// <summary>This process will put no more; what was put stays readable by others.</summary>
    void Close();
}

/// <summary>A queue whose consumers report each item done, so producers can wait until all are processed (Python's <c>JoinableQueue</c>).</summary>
/// <typeparam name="T">The item type.</typeparam>
public interface IJoinableQueue<T> : IQueue<T>
{
    /// <summary>Marks one item taken with Get as processed; more calls than items → <see cref="InvalidOperationException"/>.</summary>
    void TaskDone();

    /// <summary>Waits until every item put has been marked done.</summary>
    void Join();

    /// <summary>As <see cref="Join()"/>, giving up after <paramref name="timeout"/>; true if all were done.</summary>
    bool Join(TimeSpan timeout);
}
