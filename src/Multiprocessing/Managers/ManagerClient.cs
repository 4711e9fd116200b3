using System.Net.Sockets;

namespace Multiprocessing.Managers;

/// <summary>
/// The calling side of a manager: one connection per (thread, server), as Python's proxies keep, so a thread's calls
/// are served in order by one server thread (which is what makes an RLock held through a proxy belong to its thread).
/// </summary>
internal static class ManagerClient
{
    [ThreadStatic]
    private static Dictionary<string, Connection>? t_connections;

    /// <summary>Sends <paramref name="request"/> and returns the answer; a server that is gone is an <see cref="IOException"/>, never a hang.</summary>
    public static ManagerResponse Call(ServerAddress server, ManagerRequest request)
    {
        Dictionary<string, Connection> connections = t_connections ??= [];
        string key = server.Key;
        if (!connections.TryGetValue(key, out Connection? connection) || connection.Closed)
        {
            connection = Connect(server);
            connections[key] = connection;
        }

        try
        {
            connection.Send(request);
            return connection.Recv<ManagerResponse>();
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            connections.Remove(key);
            connection.Dispose();
            throw new IOException($"The manager's server at {Describe(server)} is gone or stopped answering: {ex.Message}", ex);
        }
    }

    /// <summary>Calls and returns the value, throwing the server's exception as <see cref="RemoteException"/>.</summary>
    public static ManagerResponse CallChecked(ServerAddress server, ManagerRequest request)
    {
        ManagerResponse response = Call(server, request);
        if (response.Error is { } error)
        {
            throw error;
        }

        return response;
    }

    /// <summary>Forgets this thread's connection to <paramref name="server"/> (after a shutdown).</summary>
    public static void Forget(ServerAddress server)
    {
        if (t_connections is { } connections && connections.Remove(server.Key, out Connection? connection))
        {
            connection.Dispose();
        }
    }

    private static Connection Connect(ServerAddress server)
    {
        try
        {
            return Client.Connect(server.EndPoint, server.AuthKey);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Cannot reach the manager's server at {Describe(server)}: {ex.Message}", ex);
        }
    }

    private static string Describe(ServerAddress server) => Platform.ListeningSockets.Describe(server.EndPoint);
}
