using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>
/// Python's <c>multiprocessing.connection.Listener</c>: a bound socket that accepts connections from
/// <see cref="Client"/> (or from Python's <c>multiprocessing.connection.Client</c>) and returns them as
/// <see cref="Connection"/> objects.
/// </summary>
/// <remarks>
/// <para>
/// Addresses: an <see cref="IPEndPoint"/> listens on TCP (port 0 picks a free port: read it back from
/// <see cref="Address"/>); a <see cref="UnixDomainSocketEndPoint"/> with a path creates that socket file, owner-only
/// (mode 0600), and removes it on <see cref="Dispose"/>; one whose name starts with <c>'\0'</c> is a Linux abstract
/// name, which leaves no file but which any local process can connect to, so give it an auth key. A
/// <see cref="NamedPipeEndPoint"/> listens on a named pipe (Python's <c>AF_PIPE</c>), which only the current user can
/// connect to.
/// </para>
/// <para>
/// With an auth key, every accepted connection goes through CPython's HMAC challenge–response in both directions
/// before <see cref="Accept"/> returns it; a peer with another key is refused with
/// <see cref="AuthenticationException"/> on both sides. Listening on a non-loopback TCP address requires a key.
/// </para>
/// </remarks>
public sealed class Listener : IDisposable
{
    private readonly Socket? _socket;
    private readonly NamedPipeAcceptor? _pipes;
    private readonly byte[]? _authKey;
    private readonly string? _createdPath;
    private TimeSpan _authenticationTimeout = Handshake.DefaultTimeout;
    private volatile EndPoint? _lastAccepted;
    private int _closed;

    /// <summary>Binds <paramref name="address"/> and starts listening.</summary>
    /// <param name="address">
    /// An <see cref="IPEndPoint"/> (TCP), a <see cref="UnixDomainSocketEndPoint"/> (a path, or a Linux abstract
    /// name starting with <c>'\0'</c>) or a <see cref="NamedPipeEndPoint"/>.
    /// </param>
    /// <param name="authKey">The shared secret peers must prove they hold; null for no authentication (as in Python).</param>
    /// <param name="backlog">How many connections may wait to be accepted.</param>
    /// <exception cref="ArgumentException">
    /// The address is a non-loopback TCP address and there is no auth key (use the overload with
    /// <c>allowUnauthenticatedRemote</c> to insist), the key is empty, or the address kind is not supported.
    /// </exception>
    /// <exception cref="IOException">The address is in use, or cannot be bound; the message names it.</exception>
    /// <exception cref="PlatformNotSupportedException">A Unix socket on an OS other than Linux.</exception>
    public Listener(EndPoint address, byte[]? authKey = null, int backlog = 16)
        : this(address, authKey, backlog, allowUnauthenticatedRemote: false)
    {
    }

    /// <summary>Binds <paramref name="address"/> and starts listening.</summary>
    /// <param name="address">
    /// An <see cref="IPEndPoint"/> (TCP), a <see cref="DnsEndPoint"/> (resolved, TCP), a
    /// <see cref="UnixDomainSocketEndPoint"/> (a path, or a Linux abstract name starting with <c>'\0'</c>) or a
    /// <see cref="NamedPipeEndPoint"/> (a pipe on this machine; the backlog does not apply).
    /// </param>
    /// <param name="authKey">The shared secret peers must prove they hold; null for no authentication.</param>
    /// <param name="backlog">How many connections may wait to be accepted.</param>
    /// <param name="allowUnauthenticatedRemote">
    /// True to listen on a non-loopback TCP address without an auth key, which lets anyone who can reach the port
    /// send this process data. Leave false unless the network is trusted.
    /// </param>
    /// <exception cref="ArgumentException">
    /// The address is a non-loopback TCP address, there is no auth key and <paramref name="allowUnauthenticatedRemote"/>
    /// is false; or the key is empty; or the address kind is not supported.
    /// </exception>
    /// <exception cref="IOException">The address is in use, or cannot be bound; the message names it.</exception>
    /// <exception cref="PlatformNotSupportedException">A Unix socket on an OS other than Linux.</exception>
    public Listener(EndPoint address, byte[]? authKey, int backlog, bool allowUnauthenticatedRemote)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentOutOfRangeException.ThrowIfNegative(backlog);
        if (authKey is { Length: 0 })
        {
            throw new ArgumentException("The auth key is empty: pass null for no authentication, or a secret of several random bytes.", nameof(authKey));
        }

        if (address is DnsEndPoint dns)
        {
            address = Resolve(dns);
        }

        if (address is IPEndPoint ip && authKey is null && !allowUnauthenticatedRemote && !IsLoopback(ip.Address))
        {
            throw new ArgumentException(
                $"Listening on {ip}, which is not a loopback address, needs an auth key: without one anyone who can reach the port can send this process data. " +
                "Pass an auth key, listen on 127.0.0.1 or ::1, or pass allowUnauthenticatedRemote: true if the network is trusted.",
                nameof(authKey));
        }

        _authKey = authKey is null ? null : (byte[])authKey.Clone();
        if (address is NamedPipeEndPoint pipe)
        {
            _pipes = new NamedPipeAcceptor(pipe);
            Address = pipe;
            return;
        }

        _socket = ListeningSockets.Open(address, backlog, out _createdPath);
        Address = _socket.LocalEndPoint ?? address;
    }

    /// <summary>The address actually bound: with port 0, the port the OS chose. Give it to <see cref="Client.Connect"/>.</summary>
    public EndPoint Address { get; }

    /// <summary>The address of the peer last accepted (unnamed Unix clients have an empty path), or null before the first and for named pipes (as in Python).</summary>
    public EndPoint? LastAccepted => _lastAccepted;

    /// <summary>Whether the listener requires an auth key of its peers.</summary>
    public bool Authenticates => _authKey is not null;

    /// <summary>
    /// How long an accepted peer has to complete the authentication handshake before it is dropped with
    /// <see cref="AuthenticationException"/>, so a silent peer cannot stall <see cref="Accept"/>. Default 30 seconds;
    /// <see cref="Timeout.InfiniteTimeSpan"/> waits forever, as Python does.
    /// </summary>
    public TimeSpan AuthenticationTimeout
    {
        get => _authenticationTimeout;
        set
        {
            if (value != Timeout.InfiniteTimeSpan && (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue))
            {
                throw new ArgumentOutOfRangeException(nameof(value), value, "The timeout must be positive and under 24 days, or Timeout.InfiniteTimeSpan.");
            }

            _authenticationTimeout = value;
        }
    }

    /// <summary>Waits for a peer to connect and, with an auth key, to authenticate; returns the connection to it.</summary>
    /// <exception cref="AuthenticationException">The peer failed the handshake (another key, not a multiprocessing peer, or too slow); its connection was closed and the listener can accept again.</exception>
    /// <exception cref="IOException">The peer broke the handshake off; the listener can accept again.</exception>
    /// <exception cref="ObjectDisposedException">The listener was closed, before or during the call.</exception>
    public Connection Accept()
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed) != 0, this);
        Connection connection;
        try
        {
            connection = _pipes is not null ? Accepted(_pipes.Accept()) : Accepted(_socket!.Accept());
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            throw AcceptFailed(ex);
        }

        if (_authKey is not null)
        {
            Handshake.Accepting(connection, _authKey, _authenticationTimeout);
        }

        return connection;
    }

    /// <summary>As <see cref="Accept"/>, without blocking a thread.</summary>
    /// <param name="cancellationToken">Cancels the wait; the listener stays usable. Cancelling during a handshake closes that connection.</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public async Task<Connection> AcceptAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _closed) != 0, this);
        Connection connection;
        try
        {
            connection = _pipes is not null
                ? Accepted(await _pipes.AcceptAsync(cancellationToken).ConfigureAwait(false))
                : Accepted(await _socket!.AcceptAsync(cancellationToken).ConfigureAwait(false));
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException or InvalidOperationException)
        {
            throw AcceptFailed(ex);
        }

        if (_authKey is not null)
        {
            await Handshake.AcceptingAsync(connection, _authKey, _authenticationTimeout, cancellationToken).ConfigureAwait(false);
        }

        return connection;
    }

    /// <summary>Stops listening; with a Unix path, removes the socket file. Connections already accepted stay open.</summary>
    public void Close() => Dispose();

    /// <summary>Stops listening; with a Unix path, removes the socket file. Connections already accepted stay open.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _closed, 1) != 0)
        {
            return;
        }

        _socket?.Dispose();
        _pipes?.Dispose();
        if (_createdPath is not null)
        {
            ListeningSockets.RemoveFile(_createdPath);
        }

        if (_authKey is not null)
        {
            CryptographicOperations.ZeroMemory(_authKey);
        }
    }

    /// <summary>Describes the listener.</summary>
    public override string ToString() => $"<Listener {ListeningSockets.Describe(Address)}{(_authKey is null ? "" : " authenticated")}{(_closed != 0 ? " closed" : "")}>";

    private Connection Accepted(System.IO.Pipes.NamedPipeServerStream pipe)
    {
        _lastAccepted = null;
        return new Connection(new NamedPipeTransport(pipe), readable: true, writable: true);
    }

    private Connection Accepted(Socket socket)
    {
        try
        {
            _lastAccepted = socket.RemoteEndPoint;
        }
        catch (SocketException)
        {
            _lastAccepted = null; // the peer already left; reading from the connection will say so
        }

        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            socket.NoDelay = true; // whole messages: do not hold a message's tail back waiting for an acknowledgement
        }

        return new Connection(socket, readable: true, writable: true);
    }

    private Exception AcceptFailed(Exception ex) =>
        Volatile.Read(ref _closed) != 0
            ? new ObjectDisposedException(nameof(Listener), "The listener was closed.")
            : ex is ObjectDisposedException
                ? ex
                : new IOException($"Accepting a connection on {ListeningSockets.Describe(Address)} failed: {ex.Message}", ex);

    private static bool IsLoopback(IPAddress address) =>
        IPAddress.IsLoopback(address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address);

    private static IPEndPoint Resolve(DnsEndPoint address)
    {
        IPAddress[] addresses;
        try
        {
            addresses = Dns.GetHostAddresses(address.Host, address.AddressFamily);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Cannot listen on {address.Host}:{address.Port}: the name does not resolve ({ex.Message}).", ex);
        }

        // As CPython's AF_INET listener: the first IPv4 address, else the first address at all.
        IPAddress chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork)
            ?? addresses.FirstOrDefault()
            ?? throw new IOException($"Cannot listen on {address.Host}:{address.Port}: the name has no address.");
        return new IPEndPoint(chosen, address.Port);
    }
}
