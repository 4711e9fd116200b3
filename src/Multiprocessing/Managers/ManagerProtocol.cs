using System.Net;
using System.Net.Sockets;
using Multiprocessing.Serialization;

namespace Multiprocessing.Managers;

/// <summary>What a client asks a manager's server to do.</summary>
internal enum RequestKind : byte
{
    /// <summary>Call <see cref="ManagerRequest.MethodToken"/> of <see cref="ManagerRequest.Interface"/> on object <see cref="ManagerRequest.ObjectId"/>.</summary>
    Call,

    /// <summary>Create an object with the factory registered for <see cref="ManagerRequest.Interface"/> (or a built-in kind named by <see cref="ManagerRequest.Name"/>).</summary>
    Create,

    /// <summary>Register <see cref="ManagerRequest.Factory"/> for <see cref="ManagerRequest.Interface"/>.</summary>
    Register,

    /// <summary>Get the object registered under <see cref="ManagerRequest.Name"/> (remote managers).</summary>
    Get,

    /// <summary>Stop the server.</summary>
    Shutdown,

    /// <summary>Nothing: proves the connection and the key.</summary>
    Ping,

    /// <summary>Run the calls in <see cref="ManagerRequest.Arguments"/> (requests) in order; the answer's value holds their answers.</summary>
    Batch,

    /// <summary>How many objects the server keeps (tests watch reference counting with it).</summary>
    Stats,

    /// <summary>Take the shared-memory channel in <see cref="ManagerRequest.Arguments"/> (a <see cref="ChannelOffer"/>) for this connection's calls from now on.</summary>
    OpenChannel,
}

/// <summary>One request; the answer is a <see cref="ManagerResponse"/>.</summary>
internal sealed class ManagerRequest
{
    public RequestKind Kind { get; set; }

    public long ObjectId { get; set; }

    /// <summary>The method's interface; left out of a call whose <see cref="MethodSlot"/> the server already knows.</summary>
    public Type? Interface { get; set; }

    public int MethodToken { get; set; }

    /// <summary>
    /// Non-zero: the line's number for the method. A call that names the method (<see cref="Interface"/>, <see cref="MethodToken"/>)
    /// teaches the server the number; later calls on the same line send the number alone.
    /// </summary>
    public int MethodSlot { get; set; }

    public object?[]? Arguments { get; set; }

    public string? Name { get; init; }

    public Delegate? Factory { get; init; }

    /// <summary>The calling proxy holds no reference to <see cref="ObjectId"/> yet (it arrived from another process): count one for it.</summary>
    public bool AddReference { get; set; }

    /// <summary>Objects whose proxies in this process were collected: one reference each to drop, before the request is served.</summary>
    public long[]? Releases { get; set; }

    /// <summary>Forgets a call's fields, so a thread can reuse the request for its next call (and holds no argument meanwhile).</summary>
    public void ClearCall()
    {
        Interface = null;
        MethodToken = 0;
        MethodSlot = 0;
        Arguments = null;
        AddReference = false;
        Releases = null;
    }
}

/// <summary>The server's answer: a value, a reference to an object it keeps (a proxy on this side), or an exception.</summary>
internal sealed class ManagerResponse
{
    public object? Value { get; init; }

    public RemoteException? Error { get; init; }

    /// <summary>Non-zero: the result is the server's object with this id, to be used through a proxy of <see cref="ReferenceInterface"/>.</summary>
    public long ReferenceId { get; init; }

    public Type? ReferenceInterface { get; init; }

    /// <summary>The values of <c>out</c>/<c>ref</c> parameters after the call, by position (null entries elsewhere).</summary>
    public object?[]? OutArguments { get; init; }

    /// <summary>The server counted the reference the request asked for (<see cref="ManagerRequest.AddReference"/>).</summary>
    public bool ReferenceAdded { get; set; }
}

/// <summary>Requests cross as their fields only, absent ones left out (a call is a few bytes and its arguments).</summary>
internal sealed class ManagerRequestConverter : ObjectConverter<ManagerRequest>
{
    public static readonly ManagerRequestConverter Instance = new();

    private const byte HasMethod = 1, HasArguments = 2, HasName = 4, HasFactory = 8, HasReleases = 16, AddsReference = 32;

    public override void Write(ObjectWriter writer, ManagerRequest value)
    {
        byte present = (byte)((value.Interface is not null ? HasMethod : 0) | (value.Arguments is not null ? HasArguments : 0)
            | (value.Name is not null ? HasName : 0) | (value.Factory is not null ? HasFactory : 0)
            | (value.Releases is not null ? HasReleases : 0) | (value.AddReference ? AddsReference : 0));
        writer.WriteByte((byte)value.Kind);
        writer.WriteByte(present);
        writer.WriteVarUInt((ulong)value.ObjectId);
        writer.WriteVarUInt((uint)value.MethodSlot);
        if (value.Interface is not null)
        {
            writer.WriteValue(value.Interface);
            writer.WriteInt32(value.MethodToken);
        }

        if (value.Arguments is { } arguments)
        {
            writer.WriteVarUInt((uint)arguments.Length);
            foreach (object? argument in arguments)
            {
                writer.WriteValue(argument);
            }
        }

        if (value.Name is not null)
        {
            writer.WriteString(value.Name);
        }

        if (value.Factory is not null)
        {
            writer.WriteValue(value.Factory);
        }

        if (value.Releases is { } releases)
        {
            writer.WriteVarUInt((uint)releases.Length);
            foreach (long id in releases)
            {
                writer.WriteVarUInt((ulong)id);
            }
        }
    }

    public override ManagerRequest Read(ref ObjectReader reader)
    {
        var kind = (RequestKind)reader.ReadByte();
        byte present = reader.ReadByte();
        long id = (long)reader.ReadVarUInt();
        int slot = (int)reader.ReadVarUInt();
        Type? interfaceType = null;
        int token = 0;
        if ((present & HasMethod) != 0)
        {
            interfaceType = reader.ReadValue<Type>();
            token = reader.ReadInt32();
        }

        object?[]? arguments = null;
        if ((present & HasArguments) != 0)
        {
            arguments = new object?[reader.ReadLength(1)];
            for (int i = 0; i < arguments.Length; i++)
            {
                arguments[i] = reader.ReadValue<object?>();
            }
        }

        string? name = (present & HasName) != 0 ? reader.ReadString() : null;
        Delegate? factory = (present & HasFactory) != 0 ? reader.ReadValue<Delegate>() : null;
        long[]? releases = null;
        if ((present & HasReleases) != 0)
        {
            releases = new long[reader.ReadLength(1)];
            for (int i = 0; i < releases.Length; i++)
            {
                releases[i] = (long)reader.ReadVarUInt();
            }
        }

        return new ManagerRequest
        {
            Kind = kind,
            ObjectId = id,
            Interface = interfaceType,
            MethodToken = token,
            MethodSlot = slot,
            Arguments = arguments,
            Name = name,
            Factory = factory,
            Releases = releases,
            AddReference = (present & AddsReference) != 0,
        };
    }
}

/// <summary>Responses cross as their fields only, absent ones left out.</summary>
internal sealed class ManagerResponseConverter : ObjectConverter<ManagerResponse>
{
    public static readonly ManagerResponseConverter Instance = new();

    private const byte HasValue = 1, HasError = 2, HasReference = 4, HasOuts = 8, ReferenceCounted = 16;

    public override void Write(ObjectWriter writer, ManagerResponse value)
    {
        byte present = (byte)((value.Value is not null ? HasValue : 0) | (value.Error is not null ? HasError : 0)
            | (value.ReferenceId != 0 ? HasReference : 0) | (value.OutArguments is not null ? HasOuts : 0)
            | (value.ReferenceAdded ? ReferenceCounted : 0));
        writer.WriteByte(present);
        if (value.Value is not null)
        {
            writer.WriteValue(value.Value);
        }

        if (value.Error is not null)
        {
            writer.WriteValue(value.Error);
        }

        if (value.ReferenceId != 0)
        {
            writer.WriteInt64(value.ReferenceId);
            writer.WriteValue(value.ReferenceInterface);
        }

        if (value.OutArguments is { } outs)
        {
            writer.WriteVarUInt((uint)outs.Length);
            foreach (object? item in outs)
            {
                writer.WriteValue(item);
            }
        }
    }

    public override ManagerResponse Read(ref ObjectReader reader)
    {
        byte present = reader.ReadByte();
        object? result = (present & HasValue) != 0 ? reader.ReadValue<object?>() : null;
        RemoteException? error = (present & HasError) != 0 ? reader.ReadValue<RemoteException>() : null;
        long referenceId = 0;
        Type? referenceInterface = null;
        if ((present & HasReference) != 0)
        {
            referenceId = reader.ReadInt64();
            referenceInterface = reader.ReadValue<Type>();
        }

        object?[]? outs = null;
        if ((present & HasOuts) != 0)
        {
            outs = new object?[reader.ReadLength(1)];
            for (int i = 0; i < outs.Length; i++)
            {
                outs[i] = reader.ReadValue<object?>();
            }
        }

        return new ManagerResponse
        {
            Value = result,
            Error = error,
            ReferenceId = referenceId,
            ReferenceInterface = referenceInterface,
            OutArguments = outs,
            ReferenceAdded = (present & ReferenceCounted) != 0,
        };
    }
}

/// <summary>Where a server lives and how to prove we may talk to it: what a proxy carries to other processes.</summary>
internal sealed record ServerAddress(EndPoint EndPoint, byte[] AuthKey)
{
    /// <summary>The endpoint as plain data (family and socket address bytes), since endpoints are not serializable as such.</summary>
    public (int Family, byte[] Bytes) Encode()
    {
        if (EndPoint is NamedPipeEndPoint pipe)
        {
            return (PipeFamily, System.Text.Encoding.UTF8.GetBytes(pipe.ToString()));
        }

        SocketAddress address = EndPoint.Serialize();
        return ((int)address.Family, address.Buffer[..address.Size].ToArray());
    }

    /// <summary>The family number a named pipe's address travels under (no socket family has it).</summary>
    private const int PipeFamily = -1;

    public static EndPoint Decode(int family, byte[] bytes)
    {
        if (family == PipeFamily)
        {
            return new NamedPipeEndPoint(System.Text.Encoding.UTF8.GetString(bytes));
        }

        var address = new SocketAddress((AddressFamily)family, bytes.Length);
        bytes.CopyTo(address.Buffer.Span);
        return (AddressFamily)family switch
        {
            AddressFamily.Unix => new UnixDomainSocketEndPoint("x").Create(address),
            AddressFamily.InterNetwork => new IPEndPoint(IPAddress.Any, 0).Create(address),
            AddressFamily.InterNetworkV6 => new IPEndPoint(IPAddress.IPv6Any, 0).Create(address),
            _ => throw new NotSupportedException($"A manager address of family {(AddressFamily)family} is not supported."),
        };
    }

    /// <summary>A string that names the endpoint exactly, for keying connections (computed once).</summary>
    public string Key => _key ??= MakeKey();

    private string? _key;

    private string MakeKey()
    {
        (int family, byte[] bytes) = Encode();
        return family.ToString(System.Globalization.CultureInfo.InvariantCulture) + ":" + Convert.ToHexString(bytes);
    }

    public bool Equals(ServerAddress? other)
        => other is not null && Key == other.Key && AuthKey.AsSpan().SequenceEqual(other.AuthKey);

    public override int GetHashCode() => Key.GetHashCode(StringComparison.Ordinal);
}
