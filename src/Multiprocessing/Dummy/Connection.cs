using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Threading.Channels;
using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>
/// One end of a <see cref="Pipe"/> between threads, with the API of <see cref="Multiprocessing.Connection"/>: objects
/// pass by reference (nothing is serialized), byte messages are copied.
/// </summary>
public sealed class Connection : IConnection
{
    private readonly Channel<object?> _incoming;
    private readonly Channel<object?> _outgoing;
    private readonly bool _readable;
    private readonly bool _writable;
    private volatile bool _closed;

    internal Connection(Channel<object?> incoming, Channel<object?> outgoing, bool readable, bool writable)
    {
        _incoming = incoming;
        _outgoing = outgoing;
        _readable = readable;
        _writable = writable;
    }

    /// <inheritdoc/>
    public bool Closed => _closed;

    /// <inheritdoc/>
    public bool Readable => _readable && !_closed;

    /// <inheritdoc/>
    public bool Writable => _writable && !_closed;

    /// <summary>Sends <paramref name="value"/> itself to the other end (no copy is made).</summary>
    /// <exception cref="IOException">The other end is closed.</exception>
    public void Send<T>(T value)
    {
        EnsureWritable();
        Write(value);
    }

    /// <summary>Sends a copy of <paramref name="data"/> as one message.</summary>
    public void SendBytes(ReadOnlySpan<byte> data)
    {
        EnsureWritable();
        Write(data.ToArray());
    }

    /// <summary>Sends <paramref name="size"/> bytes of <paramref name="buffer"/> from <paramref name="offset"/>, copied, as one message.</summary>
    public void SendBytes(byte[] buffer, int offset, int size)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)offset, (uint)buffer.Length, nameof(offset));
        ArgumentOutOfRangeException.ThrowIfGreaterThan((uint)size, (uint)(buffer.Length - offset), nameof(size));
        SendBytes(buffer.AsSpan(offset, size));
    }

    /// <summary>Receives the next object sent by the other end.</summary>
    /// <exception cref="EndOfStreamException">The other end closed and nothing is left to receive.</exception>
    public T Recv<T>() => (T)Read()!;

    /// <summary>Receives the next object sent by the other end.</summary>
    public object? Recv() => Read();

    /// <summary>Receives one message of bytes.</summary>
    /// <param name="maxLength">If the message is longer, <see cref="IOException"/> is thrown and this end can no longer receive.</param>
    public byte[] RecvBytes(int? maxLength = null)
    {
        if (maxLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The maximum length must not be negative.");
        }

        return CheckLength(AsBytes(Read()), maxLength);
    }

    /// <summary>Receives one message into <paramref name="buffer"/> at <paramref name="offset"/> and returns its length.</summary>
    /// <exception cref="BufferTooShortException">The message does not fit; it is in the exception's <see cref="BufferTooShortException.Payload"/>.</exception>
    public int RecvBytesInto(byte[] buffer, int offset = 0)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        if ((uint)offset > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "The offset falls outside the buffer.");
        }

        return RecvBytesInto(buffer.AsSpan(offset));
    }

    /// <summary>Receives one message into <paramref name="buffer"/> and returns its length.</summary>
    /// <exception cref="BufferTooShortException">The message does not fit; it is in the exception's <see cref="BufferTooShortException.Payload"/>.</exception>
    public int RecvBytesInto(Span<byte> buffer)
    {
        byte[] message = AsBytes(Read());
        if (message.Length > buffer.Length)
        {
            throw new BufferTooShortException($"A message of {message.Length} bytes does not fit in a buffer of {buffer.Length} bytes.", message);
        }

        message.CopyTo(buffer);
        return message.Length;
    }

    /// <summary>Whether a message (or the end of the stream) is waiting; waits up to <paramref name="timeout"/> (zero: do not wait; <see cref="Timeout.InfiniteTimeSpan"/>: forever).</summary>
    public bool Poll(TimeSpan timeout = default)
    {
        EnsureReadable();
        ChannelReader<object?> reader = _incoming.Reader;
        if (reader.TryPeek(out _) || reader.Completion.IsCompleted)
        {
            return true;
        }

        int milliseconds = Waits.Milliseconds(timeout);
        if (milliseconds == 0)
        {
            return false;
        }

        // Cancelled on the way out, or the channel would keep the waiter until the next message (see WaitForAny).
        using var done = new CancellationTokenSource();
        Task<bool> ready = reader.WaitToReadAsync(done.Token).AsTask();
        try
        {
            return ready.Wait(milliseconds, CancellationToken.None);
        }
        finally
        {
            done.Cancel();
        }
    }

    /// <summary>Sends <paramref name="value"/> without blocking (an in-memory send never waits).</summary>
    public ValueTask SendAsync<T>(T value, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        Send(value);
        return ValueTask.CompletedTask;
    }

    /// <summary>Receives the next object without blocking a thread.</summary>
    /// <exception cref="EndOfStreamException">The other end closed and nothing is left to receive.</exception>
    public async ValueTask<T> RecvAsync<T>(CancellationToken cancellationToken = default)
        => (T)(await ReadAsync(cancellationToken).ConfigureAwait(false))!;

    /// <summary>Sends a copy of <paramref name="data"/> as one message (an in-memory send never waits).</summary>
    public ValueTask SendBytesAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        SendBytes(data.Span);
        return ValueTask.CompletedTask;
    }

    /// <summary>Receives one message of bytes without blocking a thread.</summary>
    /// <param name="maxLength">If the message is longer, <see cref="IOException"/> is thrown and this end can no longer receive.</param>
    /// <param name="cancellationToken">Stops the wait for a message.</param>
    /// <exception cref="EndOfStreamException">The other end closed and nothing is left to receive.</exception>
    public async ValueTask<byte[]> RecvBytesAsync(int? maxLength = null, CancellationToken cancellationToken = default)
    {
        if (maxLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The maximum length must not be negative.");
        }

        return CheckLength(AsBytes(await ReadAsync(cancellationToken).ConfigureAwait(false)), maxLength);
    }

    /// <summary>
    /// Waits until any of <paramref name="items"/> is ready and returns those that are, as
    /// <see cref="Multiprocessing.Connection.Wait"/> does: connections with a message or end of stream waiting,
    /// <see cref="Process"/> objects (or their <see cref="Process.Sentinel"/>) whose thread ended, and sockets or OS
    /// handles that are readable.
    /// </summary>
    /// <param name="items"><see cref="Connection"/>, <see cref="Process"/>, <see cref="Socket"/> or <see cref="SafeHandle"/> objects.</param>
    /// <param name="timeout">Null or <see cref="Timeout.InfiniteTimeSpan"/> waits forever; zero or any other negative value only polls.</param>
    /// <returns>The ready subset, in the order given; empty when the timeout passed.</returns>
    /// <exception cref="ArgumentException">An item is none of those (or null).</exception>
    /// <exception cref="ObjectDisposedException">A connection, socket or handle is closed.</exception>
    /// <exception cref="InvalidOperationException">A process was never started.</exception>
    public static IReadOnlyList<object> Wait(IEnumerable<object> items, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        object[] all = items.ToArray();
        var handles = new SafeHandle?[all.Length]; // null for in-memory items (connections, threads), which are checked but not polled
        for (int i = 0; i < all.Length; i++)
        {
            handles[i] = all[i] switch
            {
                Connection connection => connection.ThrowIfClosed(),
                Process process => process.ThrowIfNotWaitable(),
                Socket socket => OpenHandle(socket.SafeHandle, socket),
                SafeHandle handle => OpenHandle(handle, handle),
                _ => throw new ArgumentException($"Cannot wait on a {all[i]?.GetType().FullName ?? "null"}: pass connections, processes, sockets or OS handles.", nameof(items)),
            };
        }

        // The pinned timeout of Connection.Wait (Python's): unlike elsewhere, a negative timeout polls.
        Deadline deadline = timeout is not { } t || t == Timeout.InfiniteTimeSpan || t.TotalMilliseconds >= int.MaxValue ? Deadline.Infinite
            : Deadline.After(t <= TimeSpan.Zero ? TimeSpan.Zero : t);
        while (true)
        {
            List<object> ready = Ready(all, handles, 0);
            if (ready.Count > 0)
            {
                return ready;
            }

            int milliseconds = Waits.Milliseconds(deadline);
            if (milliseconds == 0)
            {
                return ready;
            }

            WaitForAny(all, handles, milliseconds);
        }
    }

    /// <summary>Closes this end: the other end receives what was already sent, then <see cref="EndOfStreamException"/>; its sends fail.</summary>
    public void Close() => Dispose();

    /// <inheritdoc cref="Close"/>
    public void Dispose()
    {
        _closed = true;
        _outgoing.Writer.TryComplete();
        _incoming.Writer.TryComplete();
    }

    /// <summary>Like the process version's repr.</summary>
    public override string ToString() => $"<Connection {(Readable ? "r" : "")}{(Writable ? "w" : "")}{(_closed ? " closed" : "")} thread>";

    /// <summary>Whether a receive would return at once: a message, or the end of the stream, is waiting.</summary>
    private bool IsReady
    {
        get
        {
            ChannelReader<object?> reader = _incoming.Reader;
            return reader.TryPeek(out _) || reader.Completion.IsCompleted;
        }
    }

    private SafeHandle? ThrowIfClosed()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        return null;
    }

    private static SafeHandle OpenHandle(SafeHandle handle, object owner)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, owner);
        return handle;
    }

    /// <summary>The items ready now, in order; OS handles are polled for up to <paramref name="milliseconds"/>.</summary>
    private static List<object> Ready(object[] all, SafeHandle?[] handles, int milliseconds)
    {
        bool[] handleReady = PollHandles(handles, milliseconds);
        var ready = new List<object>();
        for (int i = 0; i < all.Length; i++)
        {
            bool isReady = all[i] switch
            {
                Connection connection => connection.IsReady,
                Process process => process.Ended.IsCompleted,
                _ => handleReady[i],
            };
            if (isReady)
            {
                ready.Add(all[i]);
            }
        }

        return ready;
    }

    /// <summary>
    /// Blocks until something among <paramref name="all"/> may have become ready or <paramref name="milliseconds"/>
    /// passed. In-memory items (connections, threads) complete tasks; OS handles are polled, with an eventfd among
    /// them that those tasks set, so one poll wakes for either kind.
    /// </summary>
    private static void WaitForAny(object[] all, SafeHandle?[] handles, int milliseconds)
    {
        // Cancelled on the way out: a channel keeps an uncancelled waiter until its next message, so a loop of timed
        // waits on a quiet connection would pile them up.
        using var done = new CancellationTokenSource();
        try
        {
            WaitForAny(all, handles, milliseconds, done.Token);
        }
        finally
        {
            done.Cancel();
        }
    }

    private static void WaitForAny(object[] all, SafeHandle?[] handles, int milliseconds, CancellationToken done)
    {
        var tasks = new List<Task>(all.Length);
        foreach (object item in all)
        {
            switch (item)
            {
                case Connection connection:
                    tasks.Add(connection._incoming.Reader.WaitToReadAsync(done).AsTask());
                    break;
                case Process process:
                    tasks.Add(process.Ended);
                    break;
            }
        }

        if (Array.TrueForAll(handles, handle => handle is null))
        {
            if (tasks.Count == 0)
            {
                Thread.Sleep(milliseconds); // nothing to wait on: the timeout passes, as a poll of no handles does
                return;
            }

            _ = Task.WaitAny([.. tasks], milliseconds, CancellationToken.None);
            return;
        }

        using SafeHandle wake = ReadableSignal.Create(set: false);
        foreach (Task task in tasks)
        {
            _ = task.ContinueWith(static (_, signal) => ReadableSignal.Set((SafeHandle)signal!), wake, done, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        _ = PollHandles([.. handles, wake], milliseconds);
    }

    /// <summary>Polls the non-null handles for up to <paramref name="milliseconds"/>; whether each is readable.</summary>
    private static bool[] PollHandles(SafeHandle?[] handles, int milliseconds)
    {
        int count = Array.FindAll(handles, handle => handle is not null).Length;
        if (count == 0)
        {
            return new bool[handles.Length];
        }

        var fds = new int[count];
        var added = new bool[handles.Length];
        int n = 0;
        try
        {
            for (int i = 0; i < handles.Length; i++)
            {
                if (handles[i] is { } handle)
                {
                    handle.DangerousAddRef(ref added[i]); // kept open while polled
                    fds[n++] = (int)handle.DangerousGetHandle();
                }
            }

            bool[] polled = Readiness.Wait(fds, milliseconds);
            var result = new bool[handles.Length];
            n = 0;
            for (int i = 0; i < handles.Length; i++)
            {
                if (handles[i] is not null)
                {
                    result[i] = polled[n++];
                }
            }

            return result;
        }
        finally
        {
            for (int i = 0; i < handles.Length; i++)
            {
                if (added[i])
                {
                    handles[i]!.DangerousRelease();
                }
            }
        }
    }

    private static byte[] AsBytes(object? message)
        => message as byte[] ?? throw new IOException($"The message is a {message?.GetType().Name ?? "null"}, not bytes: receive it with Recv.");

    private byte[] CheckLength(byte[] message, int? maxLength)
    {
        if (message.Length > maxLength)
        {
            Close();
            throw new IOException($"A message of {message.Length} bytes is longer than the maximum of {maxLength}; the connection can no longer receive.");
        }

        return message;
    }

    private async ValueTask<object?> ReadAsync(CancellationToken cancellationToken)
    {
        EnsureReadable();
        ChannelReader<object?> reader = _incoming.Reader;
        while (true)
        {
            if (reader.TryRead(out object? item))
            {
                return item;
            }

            if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw EndOfStream();
            }
        }
    }

    private void Write(object? value)
    {
        if (!_outgoing.Writer.TryWrite(value))
        {
            throw new IOException("Sending failed: the other end is closed.");
        }
    }

    private object? Read()
    {
        EnsureReadable();
        ChannelReader<object?> reader = _incoming.Reader;
        while (true)
        {
            if (reader.TryRead(out object? item))
            {
                return item;
            }

            if (!reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
            {
                throw EndOfStream();
            }
        }
    }

    private EndOfStreamException EndOfStream()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        return new EndOfStreamException("The connection was closed by its other end.");
    }

    private void EnsureReadable()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (!_readable)
        {
            throw new InvalidOperationException("This end of the connection cannot receive (it is the write-only end of a one-way pipe).");
        }
    }

    private void EnsureWritable()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (!_writable)
        {
            throw new InvalidOperationException("This end of the connection cannot send (it is the read-only end of a one-way pipe).");
        }
    }
}
