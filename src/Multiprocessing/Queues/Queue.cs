using System.Threading.Channels;
using Multiprocessing.Platform;
using Multiprocessing.Queues;

namespace Multiprocessing;

/// <summary>
/// A multi-producer, multi-consumer FIFO queue shared by processes (Python's <c>multiprocessing.Queue</c>), in shared
/// memory: <see cref="Put(T)"/> copies the item into it and returns; any process holding the queue can
/// <see cref="Get()"/> it.
/// </summary>
/// <remarks>
/// <para>
/// Hand a queue to a child when it starts (as an argument or a captured variable) or send it over a
/// <see cref="Connection"/>; it cannot be put into another queue (like Python's, it carries an OS handle).
/// </para>
/// <para>
/// Unlike CPython's, there is no feeder thread: once <c>Put</c> returns, the item is in shared memory, so a producer may
/// exit at once without losing it, and joining a producer before draining the queue cannot deadlock. An item that
/// cannot be serialized fails in <c>Put</c>. Unmanaged values and <c>byte[]</c> are copied as raw bytes; other items
/// go through <see cref="Serialization.Serializer.Current"/>. Items from one producer arrive in the order it put them.
/// </para>
/// <para>
/// With <c>maxSize</c> 0 the queue is unbounded: <c>Put</c> never waits for room (memory permitting); the memory holding
/// a backlog is given back to the OS as it is consumed. Nothing is left behind in the file system, however the
/// processes end.
/// </para>
/// </remarks>
/// <typeparam name="T">The item type; every process using the queue must use the same one.</typeparam>
public class Queue<T> : IQueue<T>, IDisposable
{
    private const int BatchChunk = 64;
    private ChannelReader<T>? _reader;
    private ChannelWriter<T>? _writer;

    /// <summary>Creates a queue; <paramref name="maxSize"/> bounds the number of items (0: unbounded).</summary>
    public Queue(int maxSize = 0)
        : this(MessageRing.Create(maxSize >= 0 ? maxSize : throw new ArgumentOutOfRangeException(nameof(maxSize), maxSize, "maxSize must be 0 (unbounded) or positive."), "Multiprocessing.Queue"))
    {
    }

    internal Queue(MessageRing ring) => Ring = ring;

    internal MessageRing Ring { get; }

    /// <summary>The bound on the number of items, 0 if unbounded.</summary>
    public int MaxSize => Ring.MaxItems;

    /// <summary>The approximate number of items in the queue (Python's <c>qsize()</c>): other processes change it at any time.</summary>
    public int Count
    {
        get
        {
            Ring.Enter();
            try
            {
                return (int)Math.Min(int.MaxValue, Ring.Count);
            }
            finally
            {
                Ring.Exit();
            }
        }
    }

    /// <summary>True if the queue is empty (approximate, like <see cref="Count"/>).</summary>
    public bool IsEmpty => Count == 0;

    /// <summary>True if a bounded queue is full (approximate, like <see cref="Count"/>).</summary>
    public bool IsFull => MaxSize > 0 && Count >= MaxSize;

    /// <summary>A <see cref="ChannelReader{T}"/> over this queue, for code written for <c>System.Threading.Channels</c>.</summary>
    public ChannelReader<T> Reader => _reader ??= new QueueChannelReader<T>(this);

    /// <summary>
    /// A <see cref="ChannelWriter{T}"/> over this queue. Its <c>Complete</c> marks the queue complete for every process:
    /// readers' <c>ReadAllAsync</c> ends once the queue is drained, and channel writes are refused from then on.
    /// </summary>
    public ChannelWriter<T> Writer => _writer ??= new QueueChannelWriter<T>(this);

    /// <summary>Counts each item put as an unfinished task (<see cref="JoinableQueue{T}"/>).</summary>
    private protected virtual bool CountsTasks => false;

    /// <summary>Puts <paramref name="item"/>, waiting as long as it takes for room in a bounded queue.</summary>
    public void Put(T item) => PutCore(item, Deadline.Infinite, default);

    /// <summary>Puts <paramref name="item"/>, waiting up to <paramref name="timeout"/> for room; <see cref="QueueFullException"/> if there is none.</summary>
    public void Put(T item, TimeSpan timeout)
    {
        if (!PutCore(item, Deadline.After(timeout), default))
        {
            throw new QueueFullException();
        }
    }

    /// <summary>Puts <paramref name="item"/> if there is room within <paramref name="timeout"/> (zero, the default: do not wait).</summary>
    public bool TryPut(T item, TimeSpan timeout = default) => PutCore(item, Deadline.After(timeout), default);

    /// <summary>Puts <paramref name="item"/>; waits for room on another thread if the queue is full.</summary>
    public ValueTask PutAsync(T item, CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled(cancellationToken);
        }

        if (PutCore(item, Deadline.After(TimeSpan.Zero), default))
        {
            return ValueTask.CompletedTask;
        }

        return new ValueTask(Blocking.Run(() => PutCore(item, Deadline.Infinite, cancellationToken), cancellationToken));
    }

    /// <summary>Puts every item of <paramref name="items"/> in order, claiming room for many at a time.</summary>
    public void PutMany(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (items is T[] array)
        {
            PutMany(array.AsSpan());
            return;
        }

        var chunk = new T[BatchChunk];
        int count = 0;
        foreach (T item in items)
        {
            chunk[count++] = item;
            if (count == chunk.Length)
            {
                PutMany(chunk.AsSpan());
                count = 0;
            }
        }

        PutMany(chunk.AsSpan(0, count));
    }

    /// <summary>Puts every item of <paramref name="items"/> in order, claiming room for many at a time.</summary>
    public unsafe void PutMany(ReadOnlySpan<T> items)
    {
        Ring.Enter();
        try
        {
            Span<int> lengths = stackalloc int[BatchChunk];
            Span<long> positions = stackalloc long[BatchChunk];
            System.Buffers.ArrayBufferWriter<byte>? encoded = null;
            while (!items.IsEmpty)
            {
                int n = Math.Min(items.Length, BatchChunk);
                if (ItemCodec<T>.IsDirect)
                {
                    for (int i = 0; i < n; i++)
                    {
                        lengths[i] = ItemCodec<T>.Measure(items[i], out _);
                    }

                    int claimed = Ring.TryClaimMany(lengths[..n], positions, Deadline.Infinite, default);
                    for (int i = 0; i < claimed; i++)
                    {
                        ItemCodec<T>.Write(items[i], default, Ring.Payload(positions[i]), lengths[i]);
                        CommitOne(positions[i], wake: i == claimed - 1);
                    }

                    items = items[claimed..];
                }
                else
                {
                    // Serialize the chunk first (so a bad item fails before any of the chunk is claimed), then copy.
                    encoded ??= new System.Buffers.ArrayBufferWriter<byte>();
                    encoded.ResetWrittenCount();
                    for (int i = 0; i < n; i++)
                    {
                        lengths[i] = ItemCodec<T>.Measure(items[i], out ReadOnlySpan<byte> bytes);
                        System.Buffers.BuffersExtensions.Write(encoded, bytes);
                    }

                    ReadOnlySpan<byte> all = encoded.WrittenSpan;
                    int done = 0;
                    while (done < n)
                    {
                        int claimed = Ring.TryClaimMany(lengths[done..n], positions, Deadline.Infinite, default);
                        for (int i = 0; i < claimed; i++)
                        {
                            int length = lengths[done + i];
                            all[..length].CopyTo(new Span<byte>(Ring.Payload(positions[i]), length));
                            all = all[length..];
                            CommitOne(positions[i], wake: i == claimed - 1);
                        }

                        done += claimed;
                    }

                    items = items[n..];
                }
            }
        }
        finally
        {
            Ring.Exit();
        }
    }

    /// <summary>Removes and returns the oldest item, waiting as long as it takes for one.</summary>
    public T Get()
    {
        _ = GetCore(out T item, Deadline.Infinite, default);
        return item;
    }

    /// <summary>Removes and returns the oldest item, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if none came.</summary>
    public T Get(TimeSpan timeout) => GetCore(out T item, Deadline.After(timeout), default) ? item : throw new QueueEmptyException();

    /// <summary>Removes the oldest item if one comes within <paramref name="timeout"/> (zero, the default: do not wait).</summary>
    public bool TryGet(out T item, TimeSpan timeout = default) => GetCore(out item, Deadline.After(timeout), default);

    /// <summary>
    /// Removes the oldest item of a byte queue (<c>Queue&lt;byte[]&gt;</c>) and copies it into <paramref name="buffer"/>
    /// rather than into a new array, waiting as long as it takes for one; returns its length, or -1 if the item put was
    /// null. For large messages this saves the consumer an allocation per item (the receiving side of
    /// <see cref="Connection.RecvBytesInto(Span{byte})"/>, for queues).
    /// </summary>
    /// <exception cref="NotSupportedException">The queue's items are not <c>byte[]</c>.</exception>
    /// <exception cref="BufferTooShortException">The item is longer than <paramref name="buffer"/>: it is removed all the same, and carried whole in <see cref="BufferTooShortException.Payload"/>.</exception>
    public int GetBytesInto(Span<byte> buffer)
    {
        _ = GetBytesCore(buffer, Deadline.Infinite, out int length);
        return length;
    }

    /// <summary>As <see cref="GetBytesInto(Span{byte})"/>, waiting up to <paramref name="timeout"/>; <see cref="QueueEmptyException"/> if no item came.</summary>
    /// <exception cref="NotSupportedException">The queue's items are not <c>byte[]</c>.</exception>
    /// <exception cref="BufferTooShortException">The item is longer than <paramref name="buffer"/> (see <see cref="GetBytesInto(Span{byte})"/>).</exception>
    public int GetBytesInto(Span<byte> buffer, TimeSpan timeout)
        => GetBytesCore(buffer, Deadline.After(timeout), out int length) ? length : throw new QueueEmptyException();

    /// <summary>Removes and returns the oldest item; waits for one on another thread if the queue is empty.</summary>
    public ValueTask<T> GetAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        if (GetCore(out T item, Deadline.After(TimeSpan.Zero), default))
        {
            return new ValueTask<T>(item);
        }

        return new ValueTask<T>(Blocking.Run(() =>
        {
            _ = GetCore(out T value, Deadline.Infinite, cancellationToken);
            return value;
        }, cancellationToken));
    }

    /// <summary>
    /// Removes up to <paramref name="destination"/>.Length items that are ready, waiting as long as it takes for the
    /// first; returns how many.
    /// </summary>
    public int GetMany(Span<T> destination) => GetManyCore(destination, Deadline.Infinite);

    /// <summary>
    /// Removes up to <paramref name="destination"/>.Length items that are ready, waiting up to <paramref name="timeout"/>
    /// for the first; returns how many (0 if none came).
    /// </summary>
    public int GetMany(Span<T> destination, TimeSpan timeout) => GetManyCore(destination, Deadline.After(timeout));

    private unsafe int GetManyCore(Span<T> destination, Deadline deadline)
    {
        Ring.Enter();
        try
        {
            Span<long> positions = stackalloc long[BatchChunk];
            Span<int> lengths = stackalloc int[BatchChunk];
            int total = 0;
            while (total < destination.Length)
            {
                int want = Math.Min(BatchChunk, destination.Length - total);
                int taken = Ring.TryTakeMany(positions[..want], lengths[..want], total == 0 ? deadline : Deadline.After(TimeSpan.Zero), default);
                if (taken == 0)
                {
                    break;
                }

                try
                {
                    for (int i = 0; i < taken; i++)
                    {
                        destination[total + i] = ItemCodec<T>.Read(Ring.Payload(positions[i]), lengths[i]);
                    }
                }
                finally
                {
                    Ring.ReleaseMany(positions[..taken]);
                }

                total += taken;
            }

            return total;
        }
        finally
        {
            Ring.Exit();
        }
    }

    /// <summary>
    /// Closes this process's handle (Python's <c>close()</c>): further calls here throw <see cref="ObjectDisposedException"/>.
    /// Items already put stay in the queue for the other processes.
    /// </summary>
    public void Close() => Ring.Close();

    /// <summary>Same as <see cref="Close"/>.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Closes the handle when <paramref name="disposing"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (disposing)
        {
            Ring.Close();
        }
    }

    /// <summary>Waits until a <c>Put</c> would not block, or the queue is complete (the channel writer's view).</summary>
    internal bool WaitToWrite(Deadline deadline, CancellationToken cancellationToken)
    {
        Ring.Enter();
        try
        {
            return Ring.WaitToWrite(deadline, cancellationToken);
        }
        finally
        {
            Ring.Exit();
        }
    }

    /// <summary>Waits until an item is ready (true) or the queue is complete and empty (false).</summary>
    internal bool WaitToRead(CancellationToken cancellationToken)
    {
        Ring.Enter();
        try
        {
            return Ring.TryTakeMany(stackalloc long[1], stackalloc int[1], Deadline.Infinite, cancellationToken, peek: true, untilCompleted: true) == 1;
        }
        finally
        {
            Ring.Exit();
        }
    }

    internal unsafe bool PutCore(T item, Deadline deadline, CancellationToken cancellationToken)
    {
        Ring.Enter();
        try
        {
            int length = ItemCodec<T>.Measure(item, out ReadOnlySpan<byte> encoded);
            if (!Ring.TryClaim(length, deadline, cancellationToken, out long position))
            {
                return false;
            }

            ItemCodec<T>.Write(item, encoded, Ring.Payload(position), length);
            CommitOne(position, wake: true);
            return true;
        }
        finally
        {
            Ring.Exit();
        }
    }

    private void CommitOne(long position, bool wake)
    {
        if (CountsTasks)
        {
            Ring.CountUnfinished(position);
        }

        Ring.Commit(position, wake);
    }

    private unsafe bool GetBytesCore(Span<byte> buffer, Deadline deadline, out int length)
    {
        if (typeof(T) != typeof(byte[]))
        {
            throw new NotSupportedException($"GetBytesInto is for queues of byte[]; this queue holds {typeof(T)}.");
        }

        Ring.Enter();
        try
        {
            Span<long> positions = stackalloc long[1];
            Span<int> lengths = stackalloc int[1];
            if (Ring.TryTakeMany(positions, lengths, deadline, default) == 0)
            {
                length = 0;
                return false;
            }

            try
            {
                length = ItemCodec<T>.ReadBytesInto(Ring.Payload(positions[0]), lengths[0], buffer);
                return true;
            }
            finally
            {
                Ring.Release(positions[0]);
            }
        }
        finally
        {
            Ring.Exit();
        }
    }

    internal unsafe bool GetCore(out T item, Deadline deadline, CancellationToken cancellationToken, bool untilCompleted = false)
    {
        Ring.Enter();
        try
        {
            Span<long> positions = stackalloc long[1];
            Span<int> lengths = stackalloc int[1];
            if (Ring.TryTakeMany(positions, lengths, deadline, cancellationToken, untilCompleted: untilCompleted) == 0)
            {
                item = default!;
                return false;
            }

            try
            {
                item = ItemCodec<T>.Read(Ring.Payload(positions[0]), lengths[0]);
                return true;
            }
            finally
            {
                Ring.Release(positions[0]);
            }
        }
        finally
        {
            Ring.Exit();
        }
    }
}

/// <summary>Runs a blocking wait on a thread of its own, so an async caller's thread is never held.</summary>
internal static class Blocking
{
    public static Task Run(Action wait, CancellationToken cancellationToken)
        => Task.Factory.StartNew(wait, cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);

    public static Task<TResult> Run<TResult>(Func<TResult> wait, CancellationToken cancellationToken)
        => Task.Factory.StartNew(wait, cancellationToken, TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
}
