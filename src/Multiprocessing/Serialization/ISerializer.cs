using System.Buffers;

namespace Multiprocessing.Serialization;

/// <summary>Turns objects into bytes and back; every object that crosses a process boundary goes through one.</summary>
/// <remarks>
/// The default is <see cref="BinarySerializer"/>. A replacement set in <see cref="Serializer.Current"/> must have a
/// public parameterless constructor: children create their own instance of the same type.
/// </remarks>
public interface ISerializer
{
    /// <summary>Appends the encoding of <paramref name="value"/> to <paramref name="output"/>.</summary>
    void Serialize<T>(IBufferWriter<byte> output, T value);

    /// <summary>Decodes one value written by <see cref="Serialize{T}(IBufferWriter{byte}, T)"/>.</summary>
    T Deserialize<T>(ReadOnlySpan<byte> data);
}

/// <summary>Holds the serializer the library uses for messages (pipes, queues, pools, managers).</summary>
public static class Serializer
{
    private static ISerializer s_current = BinarySerializer.Default;

    /// <summary>The serializer used for messages; <see cref="BinarySerializer.Default"/> unless replaced.</summary>
    /// <remarks>Process targets and their captured state always travel with <see cref="BinarySerializer"/>, which alone can carry delegates.</remarks>
    public static ISerializer Current
    {
        get => s_current;
        set => s_current = value ?? throw new ArgumentNullException(nameof(value));
    }
}
