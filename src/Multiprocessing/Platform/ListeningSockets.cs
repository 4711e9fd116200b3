using System.Collections.Concurrent;
using System.ComponentModel;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;

namespace Multiprocessing.Platform;

/// <summary>Creates the bound, listening socket behind a <see cref="Listener"/>, with the OS specifics that takes.</summary>
internal static class ListeningSockets
{
    /// <summary>Owner read and write: the mode of a socket file a listener creates.</summary>
    private const uint OwnerOnly = 0x180; // 0600

    /// <summary>Set once a socket file was created (and the exit hook that removes leftovers installed).</summary>
    private static int s_exitHookInstalled;

    /// <summary>Binds a stream socket to <paramref name="address"/> and starts listening.</summary>
    /// <param name="address">An <see cref="IPEndPoint"/>, or a <see cref="UnixDomainSocketEndPoint"/> with a path or an abstract name.</param>
    /// <param name="backlog">The length of the queue of pending connections.</param>
    /// <param name="createdPath">The full path of the socket file this call created (to remove when done), or null.</param>
    /// <exception cref="IOException">The address is in use, or binding failed otherwise; the message names the address.</exception>
    public static Socket Open(EndPoint address, int backlog, out string? createdPath)
    {
        createdPath = null;
        switch (address)
        {
            case IPEndPoint ip:
                return OpenTcp(ip, backlog);
            case UnixDomainSocketEndPoint unix:
                return OpenUnix(unix, backlog, out createdPath);
            default:
                throw new ArgumentException($"Cannot listen on a {address.GetType().Name}: pass an IPEndPoint or a UnixDomainSocketEndPoint.", nameof(address));
        }
    }

    /// <summary>The raw name of a Unix endpoint, and whether it is a Linux abstract name (which starts with a NUL).</summary>
    public static string UnixName(UnixDomainSocketEndPoint address, out bool isAbstract)
    {
        // The endpoint does not expose its path; its serialized form is the family (2 bytes) then the name.
        SocketAddress raw = address.Serialize();
        var bytes = new byte[raw.Size - 2];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = raw[i + 2];
        }

        isAbstract = bytes.Length > 0 && bytes[0] == 0;
        int length = isAbstract ? bytes.Length : Array.IndexOf(bytes, (byte)0) is int nul and >= 0 ? nul : bytes.Length;
        return Encoding.UTF8.GetString(bytes, 0, length);
    }

    private static Socket OpenTcp(IPEndPoint address, int backlog)
    {
        var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux())
            {
                // As CPython on POSIX: a restarted server can bind its port again while old connections linger in
                // TIME_WAIT. Set raw, because .NET's ReuseAddress also sets SO_REUSEPORT, which would let a second
                // listener bind the same port.
                socket.SetRawSocketOption(Linux.LibC.SOL_SOCKET, Linux.LibC.SO_REUSEADDR, BitConverter.GetBytes(1));
            }

            Bind(socket, address);
            Listen(socket, address, backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static Socket OpenUnix(UnixDomainSocketEndPoint address, int backlog, out string? createdPath)
    {
        createdPath = null;
        string name = UnixName(address, out bool isAbstract);
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Listening on a Unix socket is implemented for Linux only (owner-only socket files need its semantics); {RuntimeInformation.OSDescription} is not supported yet. Use an IPEndPoint on the loopback address with an auth key.");
        }

        if (name.Length == 0)
        {
            throw new ArgumentException("The Unix socket address is empty: pass a path, or an abstract name starting with '\\0'.", nameof(address));
        }

        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            if (!isAbstract)
            {
                // Linux gives the file bind creates the mode of the socket's inode (less the umask): setting it first
                // leaves no moment in which another user could connect.
                if (Linux.LibC.fchmod((int)socket.Handle, OwnerOnly) != 0)
                {
                    throw new IOException($"Could not make the socket for {address} owner-only.", new Win32Exception(Marshal.GetLastPInvokeError()));
                }
            }

            Bind(socket, address);
            if (!isAbstract)
            {
                createdPath = Path.GetFullPath(name);
                Track(createdPath);
            }

            Listen(socket, address, backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            if (createdPath is not null)
            {
                RemoveFile(createdPath);
                createdPath = null;
            }

            throw;
        }
    }

    /// <summary>Removes the socket files of listeners never disposed; called as the process exits (a child, or on ProcessExit).</summary>
    public static void RemoveCreatedFiles()
    {
        // Cheap for the many processes that never listened: a child calls this on every exit.
        if (Volatile.Read(ref s_exitHookInstalled) != 0)
        {
            RemoveTrackedFiles();
        }
    }

    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void RemoveTrackedFiles()
    {
        foreach (string path in CreatedFiles.Paths.Keys)
        {
            RemoveFile(path);
        }
    }

    /// <summary>Removes a socket file this process created; a file already gone is fine.</summary>
    public static void RemoveFile(string path)
    {
        if (Volatile.Read(ref s_exitHookInstalled) != 0)
        {
            CreatedFiles.Paths.TryRemove(path, out _);
        }

        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
            // Someone else removed or replaced it: nothing of ours to clean.
        }
        catch (UnauthorizedAccessException)
        {
        }
    }

    private static void Track(string path)
    {
        CreatedFiles.Paths[path] = true;
        if (Interlocked.Exchange(ref s_exitHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => RemoveCreatedFiles();
        }
    }

    private static void Bind(Socket socket, EndPoint address)
    {
        try
        {
            socket.Bind(address);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new IOException($"Cannot listen on {Describe(address)}: the address is already in use.", ex);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Cannot listen on {Describe(address)}: {ex.Message}", ex);
        }
    }

    private static void Listen(Socket socket, EndPoint address, int backlog)
    {
        try
        {
            socket.Listen(backlog);
        }
        catch (SocketException ex)
        {
            throw new IOException($"Cannot listen on {Describe(address)}: {ex.Message}", ex);
        }
    }

    /// <summary>An address as a person reads it: abstract Unix names start with '@', as in ss and netstat.</summary>
    public static string Describe(EndPoint address) => address switch
    {
        UnixDomainSocketEndPoint unix => UnixName(unix, out bool isAbstract) is var name && isAbstract ? "@" + name[1..] : name,
        DnsEndPoint dns => $"{dns.Host}:{dns.Port}",
        _ => address.ToString() ?? address.GetType().Name,
    };

    /// <summary>
    /// Socket files created here and not yet removed: removed at exit if their listener was never disposed, as
    /// CPython's finalizer does. A class of its own so processes that never listen do not build it.
    /// </summary>
    private static class CreatedFiles
    {
        public static readonly ConcurrentDictionary<string, bool> Paths = new(StringComparer.Ordinal);
    }
}
