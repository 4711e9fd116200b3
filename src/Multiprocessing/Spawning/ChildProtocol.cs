using System.Buffers.Binary;
using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Spawning;

/// <summary>
/// The control channel's framing: a 4-byte little-endian length, a kind byte, then the body. Down the channel go a
/// preload hint (for a spare child) and the start request; up it comes the report of an unhandled exception.
/// </summary>
internal static class ChildProtocol
{
    public const byte Preload = 1;
    public const byte Start = 2;
    public const byte Error = 3;

    // Kind 4 is the child's very last frame, written by the platform layer: see Platform.Linux.TeardownHelper.

    /// <summary>To a spare: a start request is being prepared; stay awake for it (saves the wake-up of a sleeping CPU).</summary>
    public const byte Wake = 5;

    /// <summary>The whole <see cref="Wake"/> frame (it has no body).</summary>
    public static ReadOnlySpan<byte> WakeFrame => [1, 0, 0, 0, Wake];

    private const int MaximumFrame = 1 << 30;

    /// <summary>Serializes <paramref name="body"/> into one frame; <paramref name="privileged"/> may cross although it is a Process.</summary>
    public static byte[] Frame<T>(byte kind, T body, object? privileged = null, string? root = null) => Frame(kind, body, out PreloadHint _, out _, privileged, root);

    /// <summary>As <see cref="Frame{T}(byte, T, object?, string?)"/>, also returning the types and methods the body holds (what a reader will have to resolve).</summary>
    /// <remarks>A start frame may carry OS handles (connections the target captured): they are returned in <paramref name="handles"/>, to be sent with the frame.</remarks>
    public static byte[] Frame<T>(byte kind, T body, out PreloadHint hint, out List<System.Runtime.InteropServices.SafeHandle>? handles, object? privileged = null, string? root = null)
    {
        ObjectWriter writer = BinarySerializer.Rent();
        try
        {
            writer.WriteInt32(0);
            writer.WriteByte(kind);
            writer.PrivilegedRoot = privileged;
            writer.CanCarryHandles = kind == Start;
            writer.RecordsMethods = kind == Start;
            BinarySerializer.WriteMessage(writer, body, root);
            byte[] frame = writer.WrittenSpan.ToArray();
            BinaryPrimitives.WriteInt32LittleEndian(frame, frame.Length - 4);
            hint = PreloadHint.From(writer);
            handles = writer.Handles;
            return frame;
        }
        finally
        {
            BinarySerializer.Return(writer);
        }
    }

    /// <summary>Reads one frame; null at end of stream.</summary>
    public static (byte Kind, byte[] Body, List<int> Handles)? Read(IControlChannel channel)
    {
        var handles = new List<int>();
        Span<byte> header = stackalloc byte[5];
        if (!channel.TryReadExactly(header, handles))
        {
            return null;
        }

        int length = BinaryPrimitives.ReadInt32LittleEndian(header);
        if (length is < 1 or > MaximumFrame)
        {
            handles.ForEach(channel.CloseReceived);
            throw new InvalidDataException($"Bad control frame length {length}.");
        }

        var body = new byte[length - 1];
        if (channel.TryReadExactly(body, handles))
        {
            return (header[4], body, handles);
        }

        handles.ForEach(channel.CloseReceived); // a torn frame's handles never reach anyone
        return null;
    }

    /// <summary>Splits what a child wrote into frames, ignoring a torn last one.</summary>
    public static IEnumerable<(byte Kind, byte[] Body)> Parse(byte[] data)
    {
        int offset = 0;
        while (data.Length - offset >= 5)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan(offset));
            if (length < 1 || length > data.Length - offset - 4)
            {
                yield break;
            }

            yield return (data[offset + 4], data.AsSpan(offset + 5, length - 1).ToArray());
            offset += 4 + length;
        }
    }
}

/// <summary>
/// What the last start request held, sent to a spare child ahead of its own request (which is likely alike): the
/// types to build converters for, and the delegates' methods to look up and compile.
/// </summary>
internal sealed class PreloadHint
{
    public static PreloadHint Empty { get; } = new();

    public Type[] Types { get; init; } = [];

    public Type[] DelegateTypes { get; init; } = [];

    public Type[] DeclaringTypes { get; init; } = [];

    public Guid[] Modules { get; init; } = [];

    public int[] Tokens { get; init; } = [];

    public string[] Names { get; init; } = [];

    /// <summary>The hint for what <paramref name="writer"/> has written (non-generic methods only: they are the common case).</summary>
    public static PreloadHint From(ObjectWriter writer)
    {
        var methods = (writer.WrittenMethods ?? []).FindAll(m => !m.Method.IsGenericMethod && m.Method.DeclaringType is not null);
        return new PreloadHint
        {
            Types = writer.WrittenTypes,
            DelegateTypes = methods.ConvertAll(m => m.Delegate).ToArray(),
            DeclaringTypes = methods.ConvertAll(m => m.Method.DeclaringType!).ToArray(),
            Modules = methods.ConvertAll(m => m.Method.Module.ModuleVersionId).ToArray(),
            Tokens = methods.ConvertAll(m => m.Method.MetadataToken).ToArray(),
            Names = methods.ConvertAll(m => m.Method.Name).ToArray(),
        };
    }
}

/// <summary>What a child needs to become the process its parent started.</summary>
internal sealed class StartRequest
{
    public required string ParentName { get; init; }

    public required int ParentPid { get; init; }

    public string? SerializerType { get; init; }

    public required Process Process { get; init; }
}

/// <summary>Writes a start request flat, so error paths begin at the process rather than at the envelope.</summary>
internal sealed class StartRequestConverter : ObjectConverter<StartRequest>
{
    public override void Write(ObjectWriter writer, StartRequest value)
    {
        writer.WriteString(value.ParentName);
        writer.WriteInt32(value.ParentPid);
        writer.WriteString(value.SerializerType);
        writer.WriteValue(value.Process);
    }

    public override StartRequest Read(ref ObjectReader reader) => new()
    {
        ParentName = reader.ReadString() ?? "",
        ParentPid = reader.ReadInt32(),
        SerializerType = reader.ReadString(),
        Process = reader.ReadValue<Process>() ?? throw new InvalidDataException("A start request without a process."),
    };
}
