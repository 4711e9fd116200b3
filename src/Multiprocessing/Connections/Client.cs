using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>
/// Python's <c>multiprocessing.connection.Client</c>: connects to a <see cref="Listener"/> (or to Python's
/// <c>multiprocessing.connection.Listener</c>) and returns the <see cref="Connection"/>.
/// </summary>
public static class Client
{
    /// <summary>Connects to the listener at <paramref name="address"/>.</summary>
    /// <param name="address">
    /// An <see cref="IPEndPoint"/> or <see cref="DnsEndPoint"/> (TCP), a <see cref="UnixDomainSocketEndPoint"/>
    /// (a path, or a Linux abstract name starting with <c>'\0'</c>), or a <see cref="NamedPipeEndPoint"/> (a pipe whose
    /// instances are all busy is waited for up to a second).
    /// </param>
    /// <param name="authKey">
    /// The listener's auth key: the two sides then prove to each other that they hold it (CPython's HMAC
    /// challenge–response, either the current or the legacy MD5 form). Null when the listener has none.
    /// </param>
    /// <exception cref="AuthenticationException">The listener has another key, or does not authenticate as expected, or took over 30 seconds to.</exception>
    /// <exception cref="IOException">Nothing listens at the address, or the connection broke; the message names the address.</exception>
    public static Connection Connect(EndPoint address, byte[]? authKey = null)
    {
        Validate(address, authKey);
        if (address is NamedPipeEndPoint pipe)
        {
            return Authenticated(ConnectPipe(pipe), authKey);
        }

        Socket socket = CreateSocket(address);
        try
        {
            socket.Connect(address);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw ConnectFailed(address, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return Authenticated(Connected(socket), authKey);
    }

    /// <summary>As <see cref="Connect"/>, without blocking a thread.</summary>
    /// <param name="address">The listener's address.</param>
    /// <param name="authKey">The listener's auth key, or null when it has none.</param>
    /// <param name="cancellationToken">Cancels connecting or authenticating; the partial connection is closed.</param>
    /// <exception cref="OperationCanceledException">The token was cancelled.</exception>
    public static async Task<Connection> ConnectAsync(EndPoint address, byte[]? authKey = null, CancellationToken cancellationToken = default)
    {
        Validate(address, authKey);
        Connection connection;
        if (address is NamedPipeEndPoint pipe)
        {
            connection = await ConnectPipeAsync(pipe, cancellationToken).ConfigureAwait(false);
            if (authKey is not null)
            {
                await Handshake.ConnectingAsync(connection, authKey, Handshake.DefaultTimeout, cancellationToken).ConfigureAwait(false);
            }

            return connection;
        }

        Socket socket = CreateSocket(address);
        try
        {
            await socket.ConnectAsync(address, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException ex)
        {
            socket.Dispose();
            throw ConnectFailed(address, ex);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        connection = Connected(socket);
        if (authKey is not null)
        {
            await Handshake.ConnectingAsync(connection, authKey, Handshake.DefaultTimeout, cancellationToken).ConfigureAwait(false);
        }

        return connection;
    }

    private static Connection Authenticated(Connection connection, byte[]? authKey)
    {
        if (authKey is not null)
        {
            Handshake.Connecting(connection, authKey, Handshake.DefaultTimeout);
        }

        return connection;
    }

    private static Connection ConnectPipe(NamedPipeEndPoint address)
    {
        try
        {
            return new Connection(new NamedPipeTransport(NamedPipeAcceptor.Connect(address)), readable: true, writable: true);
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or UnauthorizedAccessException)
        {
            throw PipeConnectFailed(address, ex);
        }
    }

    private static async Task<Connection> ConnectPipeAsync(NamedPipeEndPoint address, CancellationToken cancellationToken)
    {
        try
        {
            return new Connection(new NamedPipeTransport(await NamedPipeAcceptor.ConnectAsync(address, cancellationToken).ConfigureAwait(false)), readable: true, writable: true);
        }
        catch (Exception ex) when (ex is TimeoutException or IOException or UnauthorizedAccessException)
        {
            throw PipeConnectFailed(address, ex);
        }
    }

    private static IOException PipeConnectFailed(NamedPipeEndPoint address, Exception ex) => ex is TimeoutException
        ? new IOException($"Could not connect to {address}: no listener took the connection within {NamedPipeAcceptor.ConnectTimeout.TotalSeconds:0} s (is one listening?).", ex)
        : new IOException($"Could not connect to {address}: {ex.Message}", ex);

    private static void Validate(EndPoint address, byte[]? authKey)
    {
        ArgumentNullException.ThrowIfNull(address);
        if (authKey is { Length: 0 })
        {
            throw new ArgumentException("The auth key is empty: pass null for a listener without authentication, or the listener's key.", nameof(authKey));
        }
    }

    private static Socket CreateSocket(EndPoint address) => address switch
    {
        UnixDomainSocketEndPoint => new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified),
        IPEndPoint ip => new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp),
        DnsEndPoint => new Socket(SocketType.Stream, ProtocolType.Tcp), // dual mode: tries each address the name has
        _ => throw new ArgumentException($"Cannot connect to a {address.GetType().Name}: pass an IPEndPoint, a DnsEndPoint, a UnixDomainSocketEndPoint or a NamedPipeEndPoint.", nameof(address)),
    };

    private static Connection Connected(Socket socket)
    {
        if (socket.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6)
        {
            socket.NoDelay = true; // whole messages: do not hold a message's tail back waiting for an acknowledgement
        }

        return new Connection(socket, readable: true, writable: true);
    }

    private static IOException ConnectFailed(EndPoint address, SocketException ex) =>
        new($"Could not connect to {Platform.ListeningSockets.Describe(address)}: {ex.Message}", ex);
}
