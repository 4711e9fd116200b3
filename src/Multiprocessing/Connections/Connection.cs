using System.Buffers;
using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing;

/// <summary>
/// One end of a message channel (Python's <c>multiprocessing.connection.Connection</c>): whole messages, either
/// objects (<see cref="Send{T}"/>) or bytes (<see cref="SendBytes(ReadOnlySpan{byte})"/>), framed as CPython frames them,
/// so a Python process can be the other end.
/// </summary>
/// <remarks>
/// One sender and one receiver may use a connection at the same time; concurrent senders never interleave two
/// messages' bytes. An asynchronous call cancelled after part of a message was read or written closes the
/// connection, since the stream position is then unknown; one cancelled while still waiting leaves it usable.
/// </remarks>
public sealed class Connection : IConnection
{
    /// <summary>Header and payload up to this size go out in a single write, as in CPython.</summary>
    private const int SingleWriteLimit = 16 * 1024;

    /// <summary>A claimed length is only allocated in full up to this size; beyond it the buffer grows as bytes arrive.</summary>
    private const int TrustedLength = 1 << 20;

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    private readonly ConnectionTransport _transport;
    private readonly SemaphoreSlim _sendGate = new(1, 1);
    private readonly SemaphoreSlim _receiveGate = new(1, 1);
    private bool _readable;
    private readonly bool _writable;
    private readonly bool _carriesHandles;
    private volatile bool _closed;

    /// <summary>
    /// Bytes read from the socket ahead of need: a receive that wants only a few bytes takes whatever is available in
    /// one call, so a small message (header and payload) costs one recv instead of two. Only touched under the receive gate.
    /// </summary>
    private byte[]? _ahead;
    private int _aheadStart;
    private int _aheadEnd;

    /// <summary>Stream offset of the next byte the parser takes (bytes consumed so far).</summary>
    private long _consumed;

    /// <summary>
    /// Descriptors that arrived with a read-ahead, each with the stream offset just past that read. The kernel hands a
    /// message's descriptors to the first read that touches the message's first segment, and ends that read inside it;
    /// so a batch belongs to the message containing the last byte of its read, whichever message the read started in.
    /// </summary>
    private readonly List<(long ReadEnd, List<int> Handles)> _pendingHandles = [];

    /// <summary>Scratch list the read-ahead collects descriptors in (rarely non-empty, so reads allocate nothing).</summary>
    private List<int>? _arrivals;

    private const int ReadAheadCapacity = 16 * 1024;

    /// <summary>Bytes read from the socket but not yet received as messages.</summary>
    internal int BufferedByteCount => _aheadEnd - _aheadStart;

    /// <summary>Whether a whole message already sits in this end's read-ahead buffer, so receiving it will not block.</summary>
    internal bool HasBufferedMessage
    {
        get
        {
            int buffered = BufferedByteCount;
            if (buffered < 4)
            {
                return false;
            }

            int length = BinaryPrimitives.ReadInt32BigEndian(_ahead.AsSpan(_aheadStart, 4));
            return length >= 0 && buffered - 4 >= length;
        }
    }

    internal Connection(Socket socket, bool readable, bool writable, bool shutUnusedDirection = true)
        : this(new SocketTransport(socket), readable, writable, shutUnusedDirection)
    {
    }

    internal Connection(ConnectionTransport transport, bool readable, bool writable, bool shutUnusedDirection = true)
    {
        _transport = transport;
        _readable = readable;
        _writable = writable;
        _carriesHandles = transport.Socket is { } socket && Platform.HandlePassing.CanCarry(socket);
        if (shutUnusedDirection && !readable)
        {
            TryShutdown(SocketShutdown.Receive);
        }

        if (shutUnusedDirection && !writable)
        {
            TryShutdown(SocketShutdown.Send);
        }
    }

    /// <summary>The socket under the connection (tests look at its addresses); connections over named pipes have none.</summary>
    internal Socket Socket => _transport.Socket ?? throw new InvalidOperationException("This connection runs over a named pipe, not a socket.");

    /// <summary>The OS handle under the connection, which crosses to a child.</summary>
    internal SafeHandle TransportHandle => _transport.Handle;

    /// <summary>The descriptor to poll; refused once closed, since the number may already belong to another file.</summary>
    private int Descriptor
    {
        get
        {
            ObjectDisposedException.ThrowIf(_closed, this);
            return (int)_transport.Handle.DangerousGetHandle();
        }
    }

    /// <summary>Whether the connection has been closed.</summary>
    public bool Closed => _closed;

    /// <summary>Whether this end can receive.</summary>
    public bool Readable => _readable && !_closed;

    /// <summary>Whether this end can send.</summary>
    public bool Writable => _writable && !_closed;

    /// <summary>Sends <paramref name="value"/> as one message, serialized with <see cref="Serializer.Current"/>.</summary>
    /// <exception cref="System.Runtime.Serialization.SerializationException">The value cannot cross a process boundary; nothing was sent.</exception>
    public void Send<T>(T value)
    {
        EnsureWritable();
        if (Serializer.Current is BinarySerializer)
        {
            SendWithBinarySerializer(value);
            return;
        }

        ArrayBufferWriter<byte> buffer = t_buffer ??= new ArrayBufferWriter<byte>(256);
        buffer.ResetWrittenCount();
        buffer.Advance(4);
        Serializer.Current.Serialize(buffer, value);
        Span<byte> message = MemoryMarshal.AsMemory(buffer.WrittenMemory).Span;
        BinaryPrimitives.WriteInt32BigEndian(message, message.Length - 4);
        _sendGate.Wait();
        try
        {
            WriteAll(message);
        }
        finally
        {
            _sendGate.Release();
            if (buffer.Capacity > 1 << 20)
            {
                t_buffer = null; // do not keep a huge buffer on the thread
            }
        }
    }

    /// <summary>Serializes straight behind the frame header; connections and other OS handles in the value travel beside the bytes (Unix sockets only).</summary>
    private void SendWithBinarySerializer<T>(T value)
    {
        ObjectWriter writer = BinarySerializer.Rent();
        try
        {
            writer.WriteInt32(0);
            writer.CanCarryHandles = _carriesHandles;
            BinarySerializer.WriteMessage(writer, value, root: null);
            writer.WriteInt32BigEndianAt(0, writer.Length - 4);
            _sendGate.Wait();
            try
            {
                if (writer.Handles is { Count: > 0 } handles)
                {
                    Platform.HandlePassing.SendAll(_transport.Socket!, writer.WrittenSpan, handles);
                }
                else
                {
                    WriteAll(writer.WrittenSpan);
                }
            }
            finally
            {
                _sendGate.Release();
            }
        }
        finally
        {
            BinarySerializer.Return(writer);
        }
    }

    /// <summary>
    /// Sends the messages <paramref name="source"/> produces, each as its own message (the receiver sees exactly what
    /// <see cref="Send{T}"/> would have sent, one message each), written together in as few system calls as possible.
    /// A value that cannot be serialized is replaced by the one the source gives for it, so the others still go out;
    /// a message carrying OS handles goes in a write of its own. The source is asked for its values in order, and told
    /// of each one serialized before it is asked for the next.
    /// </summary>
    internal void SendMany<T>(IMessageSource<T> source)
    {
        EnsureWritable();
        if (Serializer.Current is not BinarySerializer)
        {
            for (int i = 0; i < source.Count; i++)
            {
                try
                {
                    Send(source.Produce(i));
                    source.Serialized(i);
                }
                catch (System.Runtime.Serialization.SerializationException ex)
                {
                    Send(source.Failed(i, ex));
                }
            }

            return;
        }

        ObjectWriter writer = BinarySerializer.Rent();
        try
        {
            writer.CanCarryHandles = _carriesHandles;
            _sendGate.Wait();
            try
            {
                for (int i = 0; i < source.Count; i++)
                {
                    int start = writer.Length;
                    try
                    {
                        AppendMessage(writer, source.Produce(i));
                        source.Serialized(i);
                    }
                    catch (System.Runtime.Serialization.SerializationException ex)
                    {
                        writer.Truncate(start, 0); // handles are sent and cleared with their message, so none precede it
                        AppendMessage(writer, source.Failed(i, ex));
                    }

                    if (writer.Handles is { Count: > 0 } handles)
                    {
                        // Descriptors travel with a write of their own: flush what came before, then this message.
                        if (start > 0)
                        {
                            WriteAll(writer.WrittenSpan[..start]);
                        }

                        Platform.HandlePassing.SendAll(_transport.Socket!, writer.WrittenSpan[start..], handles);
                        writer.Reset();
                        writer.CanCarryHandles = _carriesHandles;
                    }
                }

                if (writer.Length > 0)
                {
                    WriteAll(writer.WrittenSpan);
                }
            }
            finally
            {
                _sendGate.Release();
            }
        }
        finally
        {
            BinarySerializer.Return(writer);
        }
    }

    /// <summary>Appends one framed message to <paramref name="writer"/>.</summary>
    private static void AppendMessage<T>(ObjectWriter writer, T value)
    {
        int start = writer.Length;
        writer.BeginNextMessage();
        writer.WriteInt32(0);
        BinarySerializer.WriteMessage(writer, value, root: null);
        writer.WriteInt32BigEndianAt(start, writer.Length - start - 4);
    }

    /// <summary>Sends <paramref name="data"/> as one message of raw bytes (CPython's <c>send_bytes</c>); it may be empty.</summary>
    public void SendBytes(ReadOnlySpan<byte> data)
    {
        EnsureWritable();
        Span<byte> header = stackalloc byte[12];
        int headerLength = WriteHeader(header, data.Length);
        _sendGate.Wait();
        try
        {
            if (data.Length <= SingleWriteLimit)
            {
                byte[] joined = ArrayPool<byte>.Shared.Rent(headerLength + data.Length);
                try
                {
                    header[..headerLength].CopyTo(joined);
                    data.CopyTo(joined.AsSpan(headerLength));
                    WriteAll(joined.AsSpan(0, headerLength + data.Length));
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(joined);
                }
            }
            else
            {
                WriteAll(header[..headerLength]);
                WriteAll(data);
            }
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Sends <paramref name="size"/> bytes of <paramref name="buffer"/> from <paramref name="offset"/> as one message.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The offset or size falls outside the buffer.</exception>
    public void SendBytes(byte[] buffer, int offset, int size)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        ValidateRange(buffer, offset, size);
        SendBytes(buffer.AsSpan(offset, size));
    }

    /// <summary>Receives one message and deserializes it as <typeparamref name="T"/>.</summary>
    /// <exception cref="EndOfStreamException">The other end was closed and nothing is left to read.</exception>
    /// <exception cref="IOException">The stream ended inside a message, or the message was malformed.</exception>
    public T Recv<T>()
    {
        EnsureReadable();
        _receiveGate.Wait();
        try
        {
            List<int>? handles = ReusableHandleList();
            byte[]? data = null;
            int length;
            try
            {
                (data, length) = ReceiveMessage(maxLength: null, pooled: true, handles);
                return Serializer.Current is BinarySerializer
                    ? BinarySerializer.DeserializeWithHandles<T>(data.AsSpan(0, length), handles, Platform.HandlePassing.Close)
                    : Serializer.Current.Deserialize<T>(data.AsSpan(0, length));
            }
            finally
            {
                if (data is not null)
                {
                    ArrayPool<byte>.Shared.Return(data);
                }

                CloseAll(handles); // whatever failed, handles that came with the message never leak
            }
        }
        finally
        {
            _receiveGate.Release();
        }
    }

    /// <summary>Receives one message and deserializes it as whatever it holds.</summary>
    public object? Recv() => Recv<object?>();

    /// <summary>Receives one message of raw bytes.</summary>
    /// <param name="maxLength">If the message is longer, <see cref="IOException"/> is thrown and this end can no longer receive.</param>
    public byte[] RecvBytes(int? maxLength = null)
    {
        if (maxLength < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "The maximum length must not be negative.");
        }

        EnsureReadable();
        _receiveGate.Wait();
        try
        {
            List<int>? handles = ReusableHandleList();
            try
            {
                (byte[] data, int length) = ReceiveMessage(maxLength, pooled: false, handles);
                return data.Length == length ? data : data[..length];
            }
            finally
            {
                CloseAll(handles); // a bytes message has no use for handles that came with it
            }
        }
        finally
        {
            _receiveGate.Release();
        }
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

    /// <summary>Receives one message into <paramref name="buffer"/> and returns its length, without allocating.</summary>
    /// <exception cref="BufferTooShortException">The message does not fit; it is in the exception's <see cref="BufferTooShortException.Payload"/>.</exception>
    public int RecvBytesInto(Span<byte> buffer)
    {
        EnsureReadable();
        _receiveGate.Wait();
        try
        {
            List<int>? handles = ReusableHandleList();
            long length;
            try
            {
                length = ReadHeader(maxLength: null, handles);
            }
            finally
            {
                CloseAll(handles); // a bytes message has no use for handles that came with it
            }

            if (length > buffer.Length)
            {
                // As CPython: the whole message is read, so the stream stays in step, and handed over in the exception.
                byte[] whole = ReadPayload((int)length);
                throw new BufferTooShortException($"A message of {length} bytes does not fit in a buffer of {buffer.Length} bytes.", whole);
            }

            ReadExactly(buffer[..(int)length], atMessageStart: false);
            return (int)length;
        }
        finally
        {
            _receiveGate.Release();
        }
    }

    /// <summary>Whether a message (or the end of the stream) is waiting; waits up to <paramref name="timeout"/> (zero: do not wait; <see cref="Timeout.InfiniteTimeSpan"/>: forever).</summary>
    public bool Poll(TimeSpan timeout = default)
    {
        EnsureReadable();
        return BufferedByteCount > 0 || Platform.Readiness.WaitOne(Descriptor, ToMilliseconds(timeout));
    }

    /// <summary>
    /// Polls without sleeping for up to <paramref name="spin"/>, then waits up to <paramref name="timeout"/> as
    /// <see cref="Poll"/>. A partner that answers within the spin is seen without this thread going idle, which on a
    /// VM saves the wake-up (tens of µs when it crosses CPUs); the cost is that much CPU when it does not answer.
    /// </summary>
    internal bool SpinThenPoll(TimeSpan spin, TimeSpan timeout)
    {
        EnsureReadable();
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        do
        {
            if (BufferedByteCount > 0 || Platform.Readiness.WaitOne(Descriptor, 0))
            {
                return true;
            }

            _ = Thread.Yield(); // a partner that shares this CPU gets to answer
        }
        while (System.Diagnostics.Stopwatch.GetElapsedTime(start) < spin);

        return Poll(timeout);
    }

    /// <summary>Sends <paramref name="value"/> as one message without blocking a thread.</summary>
    public async ValueTask SendAsync<T>(T value, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        var buffer = new ArrayBufferWriter<byte>(256);
        buffer.Advance(4);
        Serializer.Current.Serialize(buffer, value);
        Memory<byte> message = MemoryMarshal.AsMemory(buffer.WrittenMemory);
        BinaryPrimitives.WriteInt32BigEndian(message.Span, message.Length - 4);
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteAllAsync(message, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Sends <paramref name="data"/> as one message of raw bytes without blocking a thread.</summary>
    public async ValueTask SendBytesAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken = default)
    {
        EnsureWritable();
        byte[] header = new byte[12];
        int headerLength = WriteHeader(header, data.Length);
        await _sendGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await WriteAllAsync(header.AsMemory(0, headerLength), cancellationToken).ConfigureAwait(false);
            await WriteAllAsync(data, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _sendGate.Release();
        }
    }

    /// <summary>Receives one message and deserializes it, without blocking a thread.</summary>
    public async ValueTask<T> RecvAsync<T>(CancellationToken cancellationToken = default)
    {
        byte[] data = await RecvBytesAsync(null, cancellationToken).ConfigureAwait(false);
        return Serializer.Current.Deserialize<T>(data);
    }

    /// <summary>Receives one message of raw bytes without blocking a thread.</summary>
    public async ValueTask<byte[]> RecvBytesAsync(int? maxLength = null, CancellationToken cancellationToken = default)
    {
        EnsureReadable();
        await _receiveGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            long start = _consumed;
            byte[] header = new byte[8];
            if (!await ReadExactlyAsync(header.AsMemory(0, 4), atMessageStart: true, cancellationToken).ConfigureAwait(false))
            {
                throw new EndOfStreamException("The connection was closed by its other end.");
            }

            long length = BinaryPrimitives.ReadInt32BigEndian(header);
            if (length == -1)
            {
                await ReadExactlyAsync(header, atMessageStart: false, cancellationToken).ConfigureAwait(false);
                length = (long)BinaryPrimitives.ReadUInt64BigEndian(header);
            }

            ClaimHandles(start, _consumed - start + Math.Max(length, 0), handles: null); // async receives carry none

            CheckLength(length, maxLength);
            byte[] data = new byte[Math.Min(length, TrustedLength)];
            int filled = 0;
            while (filled < length)
            {
                if (filled == data.Length)
                {
                    Array.Resize(ref data, (int)Math.Min(length, (long)data.Length * 2));
                }

                await ReadExactlyAsync(data.AsMemory(filled, data.Length - filled), atMessageStart: false, cancellationToken).ConfigureAwait(false);
                filled = data.Length;
            }

            return data;
        }
        finally
        {
            _receiveGate.Release();
        }
    }

    /// <summary>
    /// Waits until any of <paramref name="items"/> is ready and returns those that are: connections with a message
    /// or end of stream waiting, <see cref="Process"/> objects (or their <see cref="Process.Sentinel"/>) that ended,
    /// and sockets that are readable.
    /// </summary>
    /// <param name="items"><see cref="Connection"/>, <see cref="Process"/>, <see cref="System.Net.Sockets.Socket"/> or <see cref="SafeHandle"/> objects.</param>
    /// <param name="timeout">Null or <see cref="Timeout.InfiniteTimeSpan"/> waits forever; zero or any other negative value only polls.</param>
    /// <returns>The ready subset, in the order given; empty when the timeout passed.</returns>
    public static IReadOnlyList<object> Wait(IEnumerable<object> items, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(items);
        object[] all = items.ToArray();
        var fds = new int[all.Length];
        for (int i = 0; i < all.Length; i++)
        {
            fds[i] = all[i] switch
            {
                Connection connection => connection.Descriptor,
                Process process => OpenDescriptor(process.Sentinel, process),
                Socket socket => OpenDescriptor(socket.SafeHandle, socket),
                SafeHandle handle => OpenDescriptor(handle, handle),
                _ => throw new ArgumentException($"Cannot wait on a {all[i]?.GetType().FullName ?? "null"}: pass connections, processes, sockets or OS handles.", nameof(items)),
            };
        }

        int milliseconds = timeout is not { } t || t == Timeout.InfiniteTimeSpan ? -1 : t <= TimeSpan.Zero ? 0 : ToMilliseconds(t);
        bool anyBuffered = Array.Exists(all, item => item is Connection { BufferedByteCount: > 0 });
        bool[] ready = Platform.Readiness.Wait(fds, anyBuffered ? 0 : milliseconds);
        for (int i = 0; i < all.Length; i++)
        {
            ready[i] |= all[i] is Connection { BufferedByteCount: > 0 }; // already read ahead: ready without the socket
        }

        var result = new List<object>();
        for (int i = 0; i < all.Length; i++)
        {
            if (ready[i])
            {
                result.Add(all[i]);
            }
        }

        return result;
    }

    /// <summary>Closes this end; the other end then reads <see cref="EndOfStreamException"/> once it has drained what was sent.</summary>
    public void Close() => Dispose();

    /// <summary>Closes this end.</summary>
    public void Dispose()
    {
        if (_closed)
        {
            return;
        }

        _closed = true;
        _transport.Dispose();
        if (_receiveGate.Wait(0))
        {
            // Descriptors read ahead for messages nobody will receive now; a receive in flight cleans up after itself.
            try
            {
                foreach ((_, List<int> handles) in _pendingHandles)
                {
                    CloseAll(handles);
                }

                _pendingHandles.Clear();
            }
            finally
            {
                _receiveGate.Release();
            }
        }
    }

    /// <summary>Describes the connection's state.</summary>
    public override string ToString() => $"<Connection {(Readable ? "r" : "")}{(Writable ? "w" : "")}{(_closed ? " closed" : "")}>";

    private static void CloseAll(List<int>? handles)
    {
        if (handles is null)
        {
            return;
        }

        foreach (int fd in handles)
        {
            if (fd >= 0)
            {
                Platform.HandlePassing.Close(fd);
            }
        }

        handles.Clear();
    }

    [ThreadStatic]
    private static List<int>? t_handles;

    /// <summary>A per-thread list for the handles that may come with a message, when this connection can carry them.</summary>
    private List<int>? ReusableHandleList()
    {
        if (!_carriesHandles)
        {
            return null;
        }

        List<int> list = t_handles ??= [];
        list.Clear();
        return list;
    }

    /// <summary>Reads a frame header and returns the payload length, checked against <paramref name="maxLength"/> and the largest array.</summary>
    private long ReadHeader(int? maxLength, List<int>? handles)
    {
        long start = _consumed;
        Span<byte> header = stackalloc byte[8];
        if (!ReadExactly(header[..4], atMessageStart: true))
        {
            throw new EndOfStreamException("The connection was closed by its other end.");
        }

        long length = BinaryPrimitives.ReadInt32BigEndian(header);
        if (length == -1)
        {
            ReadExactly(header, atMessageStart: false);
            length = (long)BinaryPrimitives.ReadUInt64BigEndian(header);
        }

        ClaimHandles(start, _consumed - start + Math.Max(length, 0), handles);
        CheckLength(length, maxLength);
        return length;
    }

    /// <summary>
    /// Moves the descriptors that came with the message at stream offsets [start, start + frameLength) into
    /// <paramref name="handles"/>, and closes any left from earlier messages (which no receiver can take any more).
    /// </summary>
    private void ClaimHandles(long start, long frameLength, List<int>? handles)
    {
        while (_pendingHandles.Count > 0)
        {
            (long readEnd, List<int> batch) = _pendingHandles[0];
            long last = readEnd - 1;
            if (last >= start + frameLength)
            {
                return; // a later message's
            }

            _pendingHandles.RemoveAt(0);
            if (last >= start && handles is not null)
            {
                handles.AddRange(batch);
            }
            else
            {
                CloseAll(batch);
            }
        }
    }

    private (byte[] Data, int Length) ReceiveMessage(int? maxLength, bool pooled, List<int>? handles)
    {
        int size = (int)ReadHeader(maxLength, handles);
        if (pooled && size <= TrustedLength)
        {
            byte[] rented = ArrayPool<byte>.Shared.Rent(size);
            ReadExactly(rented.AsSpan(0, size), atMessageStart: false);
            return (rented, size);
        }

        byte[] data = ReadPayload(size);
        if (pooled)
        {
            byte[] rented = ArrayPool<byte>.Shared.Rent(size);
            data.CopyTo(rented, 0);
            return (rented, size);
        }

        return (data, size);
    }

    /// <summary>Reads a payload of <paramref name="size"/> bytes into a new array that grows as bytes arrive: a peer can claim any length.</summary>
    private byte[] ReadPayload(int size)
    {
        byte[] data = new byte[Math.Min(size, TrustedLength)];
        int filled = 0;
        while (true)
        {
            ReadExactly(data.AsSpan(filled), atMessageStart: false);
            filled = data.Length;
            if (filled == size)
            {
                return data;
            }

            Array.Resize(ref data, (int)Math.Min(size, (long)data.Length * 2));
        }
    }

    private void CheckLength(long length, int? maxLength)
    {
        if (length < 0 || length > Array.MaxLength)
        {
            Dispose();
            throw new IOException($"Bad message length {length}: the stream is not a message stream, or is corrupt; the connection was closed.");
        }

        if (maxLength is { } max && length > max)
        {
            // As CPython: the rest of the message is unread, so this end cannot receive any more.
            _readable = false;
            throw new IOException($"A message of {length} bytes is longer than the maximum of {max}; the connection can no longer receive.");
        }
    }

    /// <summary>
    /// Reads exactly <paramref name="buffer"/>; false only for a clean end of stream before the first byte of a message.
    /// Descriptors that arrive with a read-ahead wait in the pending list until their message's header is parsed.
    /// </summary>
    private bool ReadExactly(Span<byte> buffer, bool atMessageStart)
    {
        int done = TakeAhead(buffer);
        while (done < buffer.Length)
        {
            // A short want reads ahead into the connection's buffer, and may run into later messages (and their
            // descriptors); a long one reads exactly what this message still owes, straight to its destination, so it
            // never touches the next message.
            bool ahead = buffer.Length - done < ReadAheadCapacity / 2;
            Span<byte> target = ahead ? (_ahead ??= new byte[ReadAheadCapacity]) : buffer[done..];
            int n;
            try
            {
                if (ahead && _carriesHandles)
                {
                    List<int> arrived = _arrivals ??= [];
                    n = Platform.HandlePassing.Receive(_transport.Socket!, target, arrived);
                    if (arrived.Count > 0)
                    {
                        _pendingHandles.Add((_consumed + n, [.. arrived]));
                        arrived.Clear();
                    }
                }
                else
                {
                    n = _transport.Receive(target);
                }
            }
            catch (IOException)
            {
                Dispose(); // bytes may have been consumed: the stream can no longer be trusted
                throw;
            }
            catch (SocketException ex)
            {
                throw new IOException($"Receiving failed: {ex.Message}", ex);
            }
            catch (ObjectDisposedException)
            {
                throw new ObjectDisposedException(nameof(Connection), "The connection was closed.");
            }

            if (n == 0)
            {
                return CleanEndOfStream(done, atMessageStart);
            }

            if (ahead)
            {
                _aheadStart = 0;
                _aheadEnd = n;
                done += TakeAhead(buffer[done..]);
            }
            else
            {
                done += n;
                _consumed += n;
            }
        }

        return true;
    }

    /// <summary>Moves read-ahead bytes into <paramref name="buffer"/>; returns how many.</summary>
    private int TakeAhead(Span<byte> buffer)
    {
        int take = Math.Min(buffer.Length, _aheadEnd - _aheadStart);
        if (take > 0)
        {
            _ahead.AsSpan(_aheadStart, take).CopyTo(buffer);
            _aheadStart += take;
            _consumed += take;
        }

        return take;
    }

    /// <remarks>
    /// Reads exactly what is asked (after any read-ahead bytes), never ahead: a plain receive would discard the
    /// descriptors of a later message it ran into.
    /// </remarks>
    private async ValueTask<bool> ReadExactlyAsync(Memory<byte> buffer, bool atMessageStart, CancellationToken cancellationToken)
    {
        int done = TakeAhead(buffer.Span);
        while (done < buffer.Length)
        {
            int n;
            try
            {
                n = await _transport.ReceiveAsync(buffer[done..], cancellationToken).ConfigureAwait(false);
            }
            catch (SocketException ex)
            {
                throw new IOException($"Receiving failed: {ex.Message}", ex);
            }
            catch (OperationCanceledException) when (!(atMessageStart && done == 0))
            {
                Dispose(); // part of a message was consumed: the stream can no longer be trusted
                throw;
            }

            if (n == 0)
            {
                return CleanEndOfStream(done, atMessageStart);
            }

            done += n;
            _consumed += n;
        }

        return true;
    }

    /// <summary>At end of stream: false if it came cleanly between messages; an error if it cut a message short.</summary>
    private static bool CleanEndOfStream(int done, bool atMessageStart)
        => done == 0 && atMessageStart ? false : throw new IOException("The connection was closed in the middle of a message.");

    private void WriteAll(ReadOnlySpan<byte> data)
    {
        try
        {
            while (!data.IsEmpty)
            {
                data = data[_transport.Send(data)..];
            }
        }
        catch (SocketException ex)
        {
            throw new IOException($"Sending failed (is the other end closed?): {ex.Message}", ex);
        }
    }

    private async ValueTask WriteAllAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        try
        {
            while (!data.IsEmpty)
            {
                data = data[await _transport.SendAsync(data, cancellationToken).ConfigureAwait(false)..];
            }
        }
        catch (SocketException ex)
        {
            throw new IOException($"Sending failed (is the other end closed?): {ex.Message}", ex);
        }
        catch (OperationCanceledException)
        {
            // A cancelled send may have put part of the frame on the wire without reporting it: the stream is unusable.
            Dispose();
            throw;
        }
    }

    /// <summary>CPython's framing: a 4-byte big-endian signed length, or −1 then an 8-byte length for payloads over 2^31−1 bytes.</summary>
    private static int WriteHeader(Span<byte> header, long length)
    {
        if (length <= int.MaxValue)
        {
            BinaryPrimitives.WriteInt32BigEndian(header, (int)length);
            return 4;
        }

        BinaryPrimitives.WriteInt32BigEndian(header, -1);
        BinaryPrimitives.WriteUInt64BigEndian(header[4..], (ulong)length);
        return 12;
    }

    private static void ValidateRange(byte[] buffer, int offset, int size)
    {
        if ((uint)offset > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(offset), offset, "The offset falls outside the buffer.");
        }

        if (size < 0 || size > buffer.Length - offset)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "The size runs past the end of the buffer.");
        }
    }

    private static int OpenDescriptor(SafeHandle handle, object owner)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, owner);
        return (int)handle.DangerousGetHandle();
    }

    private static int ToMilliseconds(TimeSpan timeout)
    {
        if (timeout == Timeout.InfiniteTimeSpan)
        {
            return -1;
        }

        Process.ValidateTimeout(timeout);
        return timeout.TotalMilliseconds >= int.MaxValue ? -1 : (int)Math.Ceiling(timeout.TotalMilliseconds);
    }

    private void EnsureReadable()
    {
        ObjectDisposedException.ThrowIf(_closed, this);
        if (!_readable)
        {
            throw new InvalidOperationException("This end of the connection cannot receive (it is the write-only end of a one-way pipe, or a message was too long).");
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

    private void TryShutdown(SocketShutdown how)
    {
        try
        {
            _transport.Shutdown(how);
        }
        catch (SocketException)
        {
            // Already closed by the other side: nothing to shut.
        }
    }
}

/// <summary>The messages one <see cref="Connection.SendMany{T}"/> call sends, produced in order.</summary>
internal interface IMessageSource<T>
{
    /// <summary>How many messages.</summary>
    int Count { get; }

    /// <summary>Message <paramref name="index"/>.</summary>
    T Produce(int index);

    /// <summary>Message <paramref name="index"/> was serialized (it goes out unless the connection fails).</summary>
    void Serialized(int index);

    /// <summary>Message <paramref name="index"/> could not be serialized: what to send in its place.</summary>
    T Failed(int index, System.Runtime.Serialization.SerializationException error);
}
