using System.Net;
using System.Net.Sockets;

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

    /// <summary>Take the shared-memory channel in <see cref="ManagerRequest.Arguments"/> (a <see cref="ChannelOffer"/>) for this connection's calls from now on.</summary>
    OpenChannel,
}

/// <summary>One request; the answer is a <see cref="ManagerResponse"/>.</summary>
internal sealed class ManagerRequest
{
    public RequestKind Kind { get; init; }

    public long ObjectId { get; init; }

    public Type? Interface { get; init; }

    public int MethodToken { get; init; }

    public object?[]? Arguments { get; init; }

    public string? Name { get; init; }

    public Delegate? Factory { get; init; }
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
