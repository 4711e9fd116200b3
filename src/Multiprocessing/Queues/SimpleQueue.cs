using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>
/// Python's <c>multiprocessing.SimpleQueue</c>: an unbounded multi-producer, multi-consumer queue shared by processes,
/// with only <see cref="Put"/>, <see cref="Get()"/>, <see cref="IsEmpty"/> and <see cref="Close"/>. It is the same shared
/// memory queue as <see cref="Queue{T}"/>, with the smaller surface.
/// </summary>
/// <typeparam name="T">The item type; every process using the queue must use the same one.</typeparam>
public sealed class SimpleQueue<T> : IDisposable
{
    /// <summary>Creates an empty queue.</summary>
    public SimpleQueue()
        : this(new Queue<T>())
    {
    }

    internal SimpleQueue(Queue<T> queue) => Inner = queue;

    internal Queue<T> Inner { get; }

    /// <summary>True if the queue is empty (other processes may change that at any time).</summary>
    public bool IsEmpty => Inner.IsEmpty;

    /// <summary>Puts <paramref name="item"/>; never waits.</summary>
    public void Put(T item) => Inner.Put(item);

    /// <summary>Removes and returns the oldest item, waiting as long as it takes for one.</summary>
    public T Get() => Inner.Get();

    /// <summary>Removes and returns the oldest item, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if none came.</summary>
    public T Get(TimeSpan timeout) => Inner.Get(timeout);

    /// <summary>Closes this process's handle; items already put stay for the other processes.</summary>
    public void Close() => Inner.Close();

    /// <summary>Same as <see cref="Close"/>.</summary>
    public void Dispose() => Inner.Dispose();
}
