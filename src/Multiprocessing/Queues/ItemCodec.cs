using System.Buffers;
using System.Runtime.CompilerServices;
using Multiprocessing.Serialization;

namespace Multiprocessing.Queues;

/// <summary>
/// How an item of type <typeparamref name="T"/> becomes a queue message: unmanaged values and byte arrays are copied
/// straight into shared memory; anything else goes through <see cref="Serializer.Current"/>, on the caller's thread.
/// </summary>
internal static unsafe class ItemCodec<T>
{
    /// <summary>True when the item's bytes are the message (no references inside).</summary>
    public static readonly bool IsRaw = !RuntimeHelpers.IsReferenceOrContainsReferences<T>();

    private static readonly bool s_isBytes = typeof(T) == typeof(byte[]);

    /// <summary>True when items are copied without the serializer (unmanaged values, byte arrays).</summary>
    public static readonly bool IsDirect = IsRaw || s_isBytes;

    /// <summary>
    /// The message length of <paramref name="item"/>; for serialized types the bytes are left in
    /// <paramref name="encoded"/> (a thread's reusable buffer, valid until the next call on this thread).
    /// </summary>
    public static int Measure(T item, out ReadOnlySpan<byte> encoded)
    {
        encoded = default;
        if (IsRaw)
        {
            return Unsafe.SizeOf<T>();
        }

        if (s_isBytes)
        {
            return Unsafe.As<T, byte[]?>(ref item) is { } bytes ? bytes.Length + 1 : 1;
        }

        ArrayBufferWriter<byte> buffer = EncodeBuffer.ForThread();
        Serializer.Current.Serialize(buffer, item);
        encoded = buffer.WrittenSpan;
        return encoded.Length;
    }

    /// <summary>Writes the message measured by <see cref="Measure"/> at <paramref name="destination"/>.</summary>
    public static void Write(T item, ReadOnlySpan<byte> encoded, byte* destination, int length)
    {
        if (IsRaw)
        {
            Unsafe.WriteUnaligned(destination, item);
        }
        else if (s_isBytes)
        {
            byte[]? bytes = Unsafe.As<T, byte[]?>(ref item);
            *destination = bytes is null ? (byte)0 : (byte)1;
            bytes?.CopyTo(new Span<byte>(destination + 1, length - 1));
        }
        else
        {
            encoded.CopyTo(new Span<byte>(destination, length));
        }
    }

    /// <summary>
    /// Copies a byte-array message into <paramref name="buffer"/>; returns its length, or -1 for a null array.
    /// <see cref="BufferTooShortException"/> (carrying the message) when it does not fit.
    /// </summary>
    public static int ReadBytesInto(byte* source, int length, Span<byte> buffer)
    {
        if (*source == 0)
        {
            return -1;
        }

        var message = new ReadOnlySpan<byte>(source + 1, length - 1);
        if (message.Length > buffer.Length)
        {
            throw new BufferTooShortException($"The queue's item is {message.Length} bytes; the buffer holds {buffer.Length}. The item was removed and is in Payload.", message.ToArray());
        }

        message.CopyTo(buffer);
        return message.Length;
    }

    /// <summary>Reads a message back into an item.</summary>
    public static T Read(byte* source, int length)
    {
        if (IsRaw)
        {
            return length == Unsafe.SizeOf<T>()
                ? Unsafe.ReadUnaligned<T>(source)
                : throw new InvalidDataException($"A queue message of {length} bytes cannot be a {typeof(T)} ({Unsafe.SizeOf<T>()} bytes): all users of a queue must agree on its item type.");
        }

        if (s_isBytes)
        {
            byte[]? bytes = null;
            if (*source != 0)
            {
                bytes = GC.AllocateUninitializedArray<byte>(length - 1);
                new ReadOnlySpan<byte>(source + 1, length - 1).CopyTo(bytes);
            }

            return Unsafe.As<byte[]?, T>(ref bytes);
        }

        return Serializer.Current.Deserialize<T>(new ReadOnlySpan<byte>(source, length));
    }
}

/// <summary>A per-thread buffer items are serialized into before they are copied into the queue.</summary>
internal static class EncodeBuffer
{
    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    public static ArrayBufferWriter<byte> ForThread()
    {
        ArrayBufferWriter<byte>? buffer = t_buffer;
        if (buffer is null || buffer.Capacity > 1 << 20)
        {
            t_buffer = buffer = new ArrayBufferWriter<byte>(256); // do not keep a huge buffer alive on the thread
        }
        else
        {
            buffer.ResetWrittenCount();
        }

        return buffer;
    }
}
