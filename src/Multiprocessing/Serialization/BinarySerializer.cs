using System.Buffers;
using System.Runtime.Serialization;

namespace Multiprocessing.Serialization;

/// <summary>
/// The library's compact binary serializer: object graphs with shared references and cycles, private and readonly
/// fields, delegates with their captured variables, exceptions, and raw-byte fast paths for unmanaged data.
/// </summary>
/// <remarks>
/// Values that only make sense in the process that made them (streams, threads, tasks, OS handles, pointers) are
/// refused with a <see cref="SerializationException"/> whose message names the path to the offending member.
/// Types are only materialized from assemblies that belong to the application.
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1822", Justification = "Instance members implement ISerializer.")]
public sealed class BinarySerializer : ISerializer
{
    [ThreadStatic]
    private static ObjectWriter? t_writer;

    [ThreadStatic]
    private static ReaderState? t_reader;

    /// <summary>The shared instance.</summary>
    public static BinarySerializer Default { get; } = new();

    /// <summary>Uses <paramref name="converter"/> for <typeparamref name="T"/> from now on, in this process.</summary>
    /// <remarks>Children do not run <c>Main</c>: register from a <c>[ModuleInitializer]</c> of the assembly that defines the type, or use <see cref="ObjectConverterAttribute"/>.</remarks>
    public static void RegisterConverter<T>(ObjectConverter<T> converter)
    {
        ArgumentNullException.ThrowIfNull(converter);
        Converters.Register(typeof(T), converter);
    }

    /// <summary>Returns the encoding of <paramref name="value"/>.</summary>
    public byte[] Serialize<T>(T value)
    {
        ObjectWriter writer = Rent();
        try
        {
            WriteMessage(writer, value, null);
            return writer.WrittenSpan.ToArray();
        }
        finally
        {
            Return(writer);
        }
    }

    /// <inheritdoc/>
    public void Serialize<T>(IBufferWriter<byte> output, T value)
    {
        ArgumentNullException.ThrowIfNull(output);
        ObjectWriter writer = Rent();
        try
        {
            WriteMessage(writer, value, null);
            output.Write(writer.WrittenSpan);
        }
        finally
        {
            Return(writer);
        }
    }

    /// <inheritdoc/>
    public T Deserialize<T>(ReadOnlySpan<byte> data)
    {
        ReaderState state = t_reader ?? new ReaderState();
        t_reader = null;
        try
        {
            return ReadMessage<T>(data, state);
        }
        finally
        {
            state.Reset();
            t_reader = state;
        }
    }

    /// <summary>Decodes one value of whatever type it holds.</summary>
    public object? Deserialize(ReadOnlySpan<byte> data) => Deserialize<object?>(data);

    /// <summary>Decodes a message whose OS handles arrived alongside it; handles no value took are closed with <paramref name="close"/>.</summary>
    internal static T DeserializeWithHandles<T>(ReadOnlySpan<byte> data, List<int>? handles, Action<int> close)
    {
        ReaderState state = t_reader ?? new ReaderState();
        t_reader = null;
        state.Handles = handles;
        try
        {
            return ReadMessage<T>(data, state);
        }
        finally
        {
            state.CloseUntakenHandles(close);
            state.Reset();
            t_reader = state;
        }
    }

    internal static ObjectWriter Rent()
    {
        ObjectWriter? writer = t_writer;
        t_writer = null;
        return writer ?? new ObjectWriter();
    }

    internal static void Return(ObjectWriter writer)
    {
        writer.Reset();
        t_writer = writer;
    }

    /// <summary>Writes the format header and <paramref name="value"/>, turning an uncrossable member into a message that names its path from <paramref name="root"/>.</summary>
    internal static void WriteMessage<T>(ObjectWriter writer, T value, string? root)
    {
        writer.WriteByte(Wire.FormatVersion);
        try
        {
            writer.WriteRoot(value);
        }
        catch (CrossingException ex)
        {
            throw ex.ToPublic(root);
        }
    }

    /// <summary>Writes <paramref name="value"/> with <paramref name="converter"/> alone: no format marker, no root type (both ends know what comes).</summary>
    internal static void WriteBare<T>(ObjectWriter writer, T value, ObjectConverter<T> converter)
    {
        try
        {
            converter.Write(writer, value);
        }
        catch (CrossingException ex)
        {
            throw ex.ToPublic(null);
        }
    }

    /// <summary>Reads what <see cref="WriteBare"/> wrote.</summary>
    internal static T ReadBare<T>(ReadOnlySpan<byte> data, ObjectConverter<T> converter)
    {
        ReaderState state = t_reader ?? new ReaderState();
        t_reader = null;
        try
        {
            var reader = new ObjectReader(data, state);
            T value = converter.Read(ref reader);
            if (reader.Remaining != 0)
            {
                throw ObjectReader.Corrupt($"{reader.Remaining} unread bytes after the value");
            }

            return value;
        }
        catch (Exception ex) when (ex is not SerializationException and not OutOfMemoryException)
        {
            throw new SerializationException($"The serialized data could not be read: {ex.Message}", ex);
        }
        finally
        {
            state.Reset();
            t_reader = state;
        }
    }

    internal static T ReadMessage<T>(ReadOnlySpan<byte> data, ReaderState state)
    {
        if (data.IsEmpty || data[0] != Wire.FormatVersion)
        {
            throw new SerializationException(data.IsEmpty
                ? "The serialized data is empty."
                : $"The serialized data does not start with this serializer's format marker (0x{Wire.FormatVersion:X2}); it was written by something else.");
        }

        var reader = new ObjectReader(data[1..], state);
        try
        {
            T value = reader.ReadRoot<T>();
            if (reader.Remaining != 0)
            {
                throw ObjectReader.Corrupt($"{reader.Remaining} unread bytes after the value");
            }

            return value;
        }
        catch (Exception ex) when (ex is not SerializationException and not OutOfMemoryException)
        {
            throw new SerializationException($"The serialized data could not be read: {ex.Message}", ex);
        }
    }
}
