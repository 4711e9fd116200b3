using System.Net.Sockets;

namespace Multiprocessing.Managers;

/// <summary>
/// The calling side of a manager: one line per (thread, server), as Python's proxies keep one connection per thread, so
/// a thread's calls are served in order by one server thread (which is what makes an RLock held through a proxy belong
/// to its thread). A line to a server on this machine carries its calls through shared memory.
/// </summary>
internal static class ManagerClient
{
    [ThreadStatic]
    private static Dictionary<string, ManagerLine>? t_lines;

    /// <summary>Sends <paramref name="request"/> and returns the answer; a server that is gone is an <see cref="IOException"/>, never a hang.</summary>
    /// <remarks>A call of <paramref name="method"/> names it only the first time on a line; after that it sends the line's number for it.</remarks>
    public static ManagerResponse Call(ServerAddress server, ManagerRequest request, System.Reflection.MethodInfo? method = null)
    {
        ManagerLine line = LineTo(server);
        int teaching = method is null ? 0 : UseSlot(line, request, method, line.NextSlot);
        ManagerResponse response = Exchange(server, line, request);
        if (teaching != 0 && response.Error is null)
        {
            line.Taught(method!, teaching); // only now: a request the server could not read taught it nothing
        }

        return response;
    }

    /// <summary>Sends several calls as one request (run in order by the server) and returns their answers, in order.</summary>
    public static ManagerResponse[] CallBatch(ServerAddress server, ManagerRequest[] calls, System.Reflection.MethodInfo[] methods)
    {
        ManagerLine line = LineTo(server);
        int[] teaching = new int[calls.Length];
        Dictionary<System.Reflection.MethodInfo, int>? newSlots = null;
        int next = line.NextSlot;
        for (int i = 0; i < calls.Length; i++)
        {
            int slot = (newSlots ??= []).TryGetValue(methods[i], out int assigned) ? assigned : next;
            teaching[i] = UseSlot(line, calls[i], methods[i], slot);
            if (teaching[i] == next)
            {
                newSlots[methods[i]] = next++;
            }
        }

        ManagerResponse response = Exchange(server, line, new ManagerRequest { Kind = RequestKind.Batch, Arguments = calls });
        if (response.Error is { } error)
        {
            throw error;
        }

        if (response.Value is not object?[] answers || answers.Length != calls.Length)
        {
            throw new IOException("The manager's server answered a batch of calls with something else.");
        }

        var responses = new ManagerResponse[answers.Length];
        for (int i = 0; i < answers.Length; i++)
        {
            responses[i] = (ManagerResponse)answers[i]!;
            if (teaching[i] != 0 && responses[i].Error is null)
            {
                line.Taught(methods[i], teaching[i]);
            }
        }

        return responses;
    }

    /// <summary>Names the method by the line's number when the server knows it; else teaches it <paramref name="slot"/>, returned.</summary>
    private static int UseSlot(ManagerLine line, ManagerRequest request, System.Reflection.MethodInfo method, int slot)
    {
        int known = line.KnownSlot(method);
        if (known != 0)
        {
            request.Interface = null;
            request.MethodToken = 0;
            request.MethodSlot = known;
            return 0;
        }

        request.MethodSlot = slot;
        return slot;
    }

    private static ManagerLine LineTo(ServerAddress server)
    {
        Dictionary<string, ManagerLine> lines = t_lines ??= [];
        string key = server.Key;
        if (!lines.TryGetValue(key, out ManagerLine? line) || line.Closed)
        {
            if (line is not null)
            {
                lines.Remove(key);
                line.Dispose();
            }

            line = Connect(server);
            lines[key] = line;
        }

        return line;
    }

    private static ManagerResponse Exchange(ServerAddress server, ManagerLine line, ManagerRequest request)
    {
        request.Releases = ReferenceReleases.Take(server);
        try
        {
            line.Send(request, ManagerRequestConverter.Instance);
            return line.Receive(ManagerResponseConverter.Instance);
        }
        catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
        {
            t_lines?.Remove(server.Key);
            line.Dispose();
            throw new IOException($"The manager's server at {Describe(server)} is gone or stopped answering: {ex.Message}", ex);
        }
    }

    /// <summary>Calls and returns the value, throwing the server's exception as <see cref="RemoteException"/>.</summary>
    public static ManagerResponse CallChecked(ServerAddress server, ManagerRequest request, System.Reflection.MethodInfo? method = null)
    {
        ManagerResponse response = Call(server, request, method);
        if (response.Error is { } error)
        {
            throw error;
        }

        return response;
    }

    /// <summary>Forgets this thread's line to <paramref name="server"/> (after a shutdown).</summary>
    public static void Forget(ServerAddress server)
    {
        if (t_lines is { } lines && lines.Remove(server.Key, out ManagerLine? line))
        {
            line.Dispose();
        }
    }

    private static ManagerLine Connect(ServerAddress server)
    {
        Connection connection;
        try
        {
            connection = Client.Connect(server.EndPoint, server.AuthKey);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Cannot reach the manager's server at {Describe(server)}: {ex.Message}", ex);
        }

        var line = new ManagerLine(connection);
        if (ManagerLine.CanShareMemory(server))
        {
            try
            {
                line.OfferChannel();
            }
            catch (Exception ex) when (ex is IOException or SocketException or ObjectDisposedException)
            {
                line.Dispose();
                throw new IOException($"The manager's server at {Describe(server)} hung up while setting up a line: {ex.Message}", ex);
            }
        }

        return line;
    }

    private static string Describe(ServerAddress server) => Platform.ListeningSockets.Describe(server.EndPoint);
}
