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
