using System.Threading.Channels;
using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>
/// A multi-producer, multi-consumer FIFO queue between threads with the API of <see cref="Multiprocessing"/>'s
/// <c>Queue&lt;T&gt;</c> (Python's <c>queue.Queue</c>, which <c>multiprocessing.dummy</c> uses), over a
/// <see cref="Channel{T}"/>: items pass by reference, nothing is copied.
/// </summary>
/// <typeparam name="T">The item type.</typeparam>
public class Queue<T> : IQueue<T>, IDisposable
{
    private readonly Channel<T> _channel;
    private volatile bool _closed;

    /// <summary>Creates a queue; <paramref name="maxSize"/> bounds the number of items (0: unbounded).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="maxSize"/> is negative.</exception>
    public Queue(int maxSize = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        MaxSize = maxSize;
        _channel = maxSize == 0
            ? Channel.CreateUnbounded<T>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false })
            : Channel.CreateBounded<T>(new BoundedChannelOptions(maxSize) { FullMode = BoundedChannelFullMode.Wait, SingleReader = false, SingleWriter = false });
    }

    /// <summary>The bound on the number of items, 0 if unbounded.</summary>
    public int MaxSize { get; }

    /// <summary>The number of items in the queue (Python's <c>qsize()</c>); other threads change it at any time.</summary>
    public int Count => Open.Reader.Count;

    /// <summary>True if the queue is empty (approximate, like <see cref="Count"/>).</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>True if a bounded queue is full (approximate, like <see cref="Count"/>).</summary>
    public bool IsFull => MaxSize > 0 && Count >= MaxSize;

    /// <summary>The queue's items as a <see cref="ChannelReader{T}"/>.</summary>
    public ChannelReader<T> Reader => Open.Reader;

    /// <summary>A <see cref="ChannelWriter{T}"/> into the queue; its <c>Complete</c> lets readers' <c>ReadAllAsync</c> end once the queue is drained.</summary>
    public ChannelWriter<T> Writer => WriterCore;

    /// <summary>What <see cref="Writer"/> returns: the channel's own writer, or one that counts tasks (<see cref="JoinableQueue{T}"/>).</summary>
    private protected virtual ChannelWriter<T> WriterCore => Open.Writer;

    private Channel<T> Open
    {
        get
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            return _channel;
        }
    }

    /// <summary>Puts <paramref name="item"/>, waiting as long as it takes for room in a bounded queue.</summary>
    public void Put(T item) => _ = PutCore(item, Deadline.Infinite);

    /// <summary>Puts <paramref name="item"/>, waiting up to <paramref name="timeout"/> for room; <see cref="QueueFullException"/> if there is none.</summary>
    public void Put(T item, TimeSpan timeout)
    {
        if (!PutCore(item, Deadline.After(timeout)))
        {
            throw QueueErrors.Full();
        }
    }

    /// <summary>Puts <paramref name="item"/> if there is room within <paramref name="timeout"/> (zero, the default: do not wait).</summary>
    public bool TryPut(T item, TimeSpan timeout = default) => PutCore(item, Deadline.After(timeout));

    /// <summary>Puts <paramref name="item"/>, waiting asynchronously for room if the queue is full.</summary>
    public ValueTask PutAsync(T item, CancellationToken cancellationToken = default)
    {
        ChannelWriter<T> writer = Open.Writer;
        Counted(1);
        if (writer.TryWrite(item))
        {
            return ValueTask.CompletedTask;
        }

        return PutSlowAsync(writer, item, cancellationToken);
    }

    /// <summary>Puts every item of <paramref name="items"/> in order.</summary>
    public void PutMany(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        foreach (T item in items)
        {
            Put(item);
        }
    }

    /// <summary>Puts every item of <paramref name="items"/> in order.</summary>
    public void PutMany(ReadOnlySpan<T> items)
    {
        foreach (T item in items)
        {
            Put(item);
        }
    }

    /// <summary>Removes and returns the oldest item, waiting as long as it takes for one.</summary>
    /// <exception cref="ChannelClosedException">The queue's <see cref="Writer"/> was completed and the queue is drained.</exception>
    public T Get()
    {
        _ = GetCore(out T item, Deadline.Infinite);
        return item;
    }

    /// <summary>Removes and returns the oldest item, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if none came.</summary>
    public T Get(TimeSpan timeout) => GetCore(out T item, Deadline.After(timeout)) ? item : throw QueueErrors.Empty();

    /// <summary>Removes the oldest item if one comes within <paramref name="timeout"/> (zero, the default: do not wait).</summary>
    public bool TryGet(out T item, TimeSpan timeout = default) => GetCore(out item, Deadline.After(timeout));

    /// <summary>
    /// Removes the oldest item of a byte queue (<c>Queue&lt;byte[]&gt;</c>) and copies it into <paramref name="buffer"/>,
    /// waiting as long as it takes for one; returns its length, or -1 if the item put was null (as
    /// <see cref="Multiprocessing.Queue{T}.GetBytesInto(Span{byte})"/>).
    /// </summary>
    /// <exception cref="NotSupportedException">The queue's items are not <c>byte[]</c>.</exception>
    /// <exception cref="BufferTooShortException">The item is longer than <paramref name="buffer"/>: it is removed all the same, and carried whole in <see cref="BufferTooShortException.Payload"/>.</exception>
    public int GetBytesInto(Span<byte> buffer)
    {
        RequireBytes();
        _ = GetCore(out T item, Deadline.Infinite);
        return CopyBytes(item, buffer);
    }

    /// <summary>As <see cref="GetBytesInto(Span{byte})"/>, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if no item came.</summary>
    /// <exception cref="NotSupportedException">The queue's items are not <c>byte[]</c>.</exception>
    /// <exception cref="BufferTooShortException">The item is longer than <paramref name="buffer"/> (see <see cref="GetBytesInto(Span{byte})"/>).</exception>
    public int GetBytesInto(Span<byte> buffer, TimeSpan timeout)
    {
        RequireBytes();
        return GetCore(out T item, Deadline.After(timeout)) ? CopyBytes(item, buffer) : throw QueueErrors.Empty();
    }

    /// <summary>Removes and returns the oldest item, waiting asynchronously if the queue is empty.</summary>
    public ValueTask<T> GetAsync(CancellationToken cancellationToken = default) => Open.Reader.ReadAsync(cancellationToken);

    /// <summary>Removes up to <paramref name="destination"/>.Length items that are ready, waiting as long as it takes for the first; returns how many.</summary>
    public int GetMany(Span<T> destination) => GetManyCore(destination, Deadline.Infinite);

    /// <summary>Removes up to <paramref name="destination"/>.Length items that are ready, waiting up to <paramref name="timeout"/> for the first; returns how many (0 if none came).</summary>
    public int GetMany(Span<T> destination, TimeSpan timeout) => GetManyCore(destination, Deadline.After(timeout));

    /// <summary>Closes the queue (Python's <c>close()</c>): further calls on it throw <see cref="ObjectDisposedException"/>; as threads share this one object, that holds for all of them.</summary>
    public void Close() => _closed = true;

    /// <summary>Same as <see cref="Close"/>.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the queue when <paramref name="disposing"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Close();
        }
    }

    /// <summary>Called with +1 before an item is put and −1 if putting it failed (a <see cref="JoinableQueue{T}"/> counts tasks).</summary>
    private protected virtual void Counted(int delta)
    {
    }

    private bool PutCore(T item, Deadline deadline)
    {
        ChannelWriter<T> writer = Open.Writer;
        Counted(1); // before the item is visible, so a consumer's TaskDone never comes first
        try
        {
            while (!writer.TryWrite(item))
            {
                if (!Wait(writer.WaitToWriteAsync(), deadline, out bool open))
                {
                    Counted(-1);
                    return false;
                }

                if (!open)
                {
                    throw new ChannelClosedException("The queue's writer was completed: no more items can be put.");
                }
            }
        }
        catch
        {
            Counted(-1);
            throw;
        }

        return true;
    }

    private static void RequireBytes()
    {
        if (typeof(T) != typeof(byte[]))
        {
            throw new NotSupportedException($"GetBytesInto is for queues of byte[]; this queue holds {typeof(T)}.");
        }
    }

    private static int CopyBytes(T item, Span<byte> buffer)
    {
        if (item is not byte[] bytes)
        {
            return -1;
        }

        if (bytes.Length > buffer.Length)
        {
            throw new BufferTooShortException($"The queue's item is {bytes.Length} bytes; the buffer holds {buffer.Length}. The item was removed and is in Payload.", bytes);
        }

        bytes.CopyTo(buffer);
        return bytes.Length;
    }

    private bool GetCore(out T item, Deadline deadline)
    {
        ChannelReader<T> reader = Open.Reader;
        while (!reader.TryRead(out item!))
        {
            if (!Wait(reader.WaitToReadAsync(), deadline, out bool open))
            {
                return false;
            }

            if (!open)
            {
                throw new ChannelClosedException("The queue's writer was completed and the queue is drained.");
            }
        }

        return true;
    }

    private int GetManyCore(Span<T> destination, Deadline deadline)
    {
        if (destination.IsEmpty || !GetCore(out destination[0], deadline))
        {
            return 0;
        }

        ChannelReader<T> reader = _channel.Reader;
        int count = 1;
        while (count < destination.Length && reader.TryRead(out destination[count]!))
        {
            count++;
        }

        return count;
    }

    /// <summary>Waits for a channel's readiness within <paramref name="deadline"/>; false if it passed first.</summary>
    private static bool Wait(ValueTask<bool> ready, Deadline deadline, out bool open)
    {
        if (ready.IsCompleted)
        {
            open = ready.Result;
            return true;
        }

        int milliseconds = Waits.Milliseconds(deadline);
        Task<bool> task = ready.AsTask();
        if (milliseconds == 0 || !task.Wait(milliseconds, CancellationToken.None))
        {
            open = true;
            return false;
        }

        open = task.Result;
        return true;
    }

    private async ValueTask PutSlowAsync(ChannelWriter<T> writer, T item, CancellationToken cancellationToken)
    {
        try
        {
            await writer.WriteAsync(item, cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            Counted(-1);
            throw;
        }
    }
}
