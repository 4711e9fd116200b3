namespace Multiprocessing.Dummy;

/// <summary>Python's <c>SimpleQueue</c> between threads: an unbounded queue with only <see cref="Put"/>, <see cref="Get()"/>, <see cref="IsEmpty"/> and <see cref="Close"/>.</summary>
/// <typeparam name="T">The item type.</typeparam>
public sealed class SimpleQueue<T> : IDisposable
{
    private readonly Queue<T> _inner = new();

    /// <summary>True if the queue is empty (approximate).</summary>
    public bool IsEmpty => _inner.IsEmpty;

    /// <summary>Puts <paramref name="item"/>.</summary>
    public void Put(T item) => _inner.Put(item);

    /// <summary>Removes and returns the oldest item, waiting as long as it takes for one.</summary>
    public T Get() => _inner.Get();

    /// <summary>Removes and returns the oldest item, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if none came.</summary>
    public T Get(TimeSpan timeout) => _inner.Get(timeout);

    /// <summary>Closes the queue: further calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Close() => _inner.Close();

    /// <summary>Same as <see cref="Close"/>.</summary>
    public void Dispose() => _inner.Dispose();
}
