using System.Threading.Channels;

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

        byte[] message = AsBytes(Read());
        if (message.Length > maxLength)
        {
            Close();
            throw new IOException($"A message of {message.Length} bytes is longer than the maximum of {maxLength}; the connection can no longer receive.");
        }

        return message;
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

        Task<bool> ready = reader.WaitToReadAsync().AsTask();
        return ready.Wait(milliseconds, CancellationToken.None);
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
    {
        EnsureReadable();
        ChannelReader<object?> reader = _incoming.Reader;
        while (true)
        {
            if (reader.TryRead(out object? item))
            {
                return (T)item!;
            }

            if (!await reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                throw EndOfStream();
            }
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

    private static byte[] AsBytes(object? message)
        => message as byte[] ?? throw new IOException($"The message is a {message?.GetType().Name ?? "null"}, not bytes: receive it with Recv.");

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
