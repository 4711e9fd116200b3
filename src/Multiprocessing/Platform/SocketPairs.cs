using System.ComponentModel;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>Creates connected pairs of local stream sockets (the transport of <see cref="Pipe"/>).</summary>
internal static unsafe class SocketPairs
{
    public static (Socket First, Socket Second) Create()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Pipes need a socketpair backend, which {RuntimeInformation.OSDescription} does not have yet; Linux is supported.");
        }

        int* fds = stackalloc int[2];
        if (Linux.LibC.socketpair(Linux.LibC.AF_UNIX, Linux.LibC.SOCK_STREAM | Linux.LibC.SOCK_CLOEXEC, 0, fds) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "socketpair failed while creating a pipe");
        }

        return (Adopt(fds[0]), Adopt(fds[1]));
    }

    /// <summary>Wraps a descriptor this process owns (made here, or received from another process) as a socket.</summary>
    public static Socket Adopt(int fd) => new(new SafeSocketHandle(fd, ownsHandle: true));
}

/// <summary>Sending and receiving OS handles with data over local (Unix) sockets.</summary>
internal static class HandlePassing
{
    /// <summary>Whether <paramref name="socket"/> can carry OS handles (an AF_UNIX socket on Linux).</summary>
    public static bool CanCarry(Socket socket) => OperatingSystem.IsLinux() && socket.AddressFamily == AddressFamily.Unix;

    /// <summary>Sends all of <paramref name="data"/> with <paramref name="handles"/> attached to its first byte.</summary>
    public static void SendAll(Socket socket, ReadOnlySpan<byte> data, IReadOnlyList<SafeHandle> handles)
        => Linux.UnixRights.SendAll(socket.SafeHandle, data, handles);

    /// <summary>Receives up to <paramref name="buffer"/>.Length bytes, adding descriptors that came with them to <paramref name="handles"/>; 0 at end of stream.</summary>
    public static int Receive(Socket socket, Span<byte> buffer, List<int> handles)
    {
        SafeHandle handle = socket.SafeHandle;
        bool added = false;
        handle.DangerousAddRef(ref added); // see SendAll: lets a Dispose from another thread wake this call
        try
        {
            return Linux.UnixRights.Receive((int)handle.DangerousGetHandle(), buffer, handles);
        }
        finally
        {
            handle.DangerousRelease();
        }
    }

    /// <summary>Closes a received descriptor nothing took.</summary>
    public static void Close(int handle) => _ = Linux.LibC.close(handle);
}
