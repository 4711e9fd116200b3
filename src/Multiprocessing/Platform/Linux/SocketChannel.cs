using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>A control channel over one end of an AF_UNIX socketpair.</summary>
internal sealed unsafe class SocketChannel(FileDescriptorHandle handle) : IControlChannel
{
    public FileDescriptorHandle Handle { get; } = handle;

    public bool TrySendAll(ReadOnlySpan<byte> data, IReadOnlyList<SafeHandle>? handles = null)
    {
        try
        {
            UnixRights.SendAll(Handle, data, handles);
            return true;
        }
        catch (Exception ex) when (ex is ObjectDisposedException or IOException)
        {
            return false; // the watcher closed it (the child has been reaped), or the peer is gone
        }
    }

    public bool TryReadExactly(Span<byte> buffer, List<int>? handles = null)
    {
        var received = handles ?? [];
        int done = 0;
        try
        {
            while (done < buffer.Length)
            {
                int n = UnixRights.Receive(Handle.Fd, buffer[done..], received);
                if (n == 0)
                {
                    return false;
                }

                done += n;
            }
        }
        catch (IOException)
        {
            return false;
        }
        finally
        {
            if (handles is null)
            {
                foreach (int fd in received)
                {
                    CloseReceived(fd);
                }
            }
        }

        return true;
    }

    public void CloseReceived(int handle) => _ = LibC.close(handle);

    public void WaitForHangUp()
    {
        var pfd = new LibC.PollFd { Fd = Handle.Fd, Events = LibC.POLLRDHUP };
        while (true)
        {
            int n = LibC.poll(&pfd, 1, -1);
            if (n > 0 && (pfd.Revents & (LibC.POLLRDHUP | LibC.POLLHUP | LibC.POLLERR | LibC.POLLNVAL)) != 0)
            {
                return;
            }

            if (n < 0 && Marshal.GetLastPInvokeError() != LibC.EINTR)
            {
                return;
            }
        }
    }

    public bool SpinUntilReadable(TimeSpan limit)
    {
        var pfd = new LibC.PollFd { Fd = Handle.Fd, Events = LibC.POLLIN };
        long end = System.Diagnostics.Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * System.Diagnostics.Stopwatch.Frequency);
        do
        {
            pfd.Revents = 0;
            if (LibC.poll(&pfd, 1, 0) > 0)
            {
                return true;
            }

            for (int i = 0; i < 20; i++)
            {
                SpinPause.Once();
            }
        }
        while (System.Diagnostics.Stopwatch.GetTimestamp() < end);
        return false;
    }

    /// <summary>Reads whatever is buffered without blocking; returns false once the peer has closed its end.</summary>
    public bool DrainAvailable(MemoryStream into)
    {
        byte* scratch = stackalloc byte[4096];
        while (true)
        {
            nint n = LibC.recv(Handle.Fd, scratch, 4096, LibC.MSG_DONTWAIT);
            if (n > 0)
            {
                into.Write(new ReadOnlySpan<byte>(scratch, (int)n));
                continue;
            }

            if (n == 0)
            {
                return false;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno == LibC.EINTR)
            {
                continue;
            }

            return errno == LibC.EAGAIN;
        }
    }

    public void MarkNonInheritable() => _ = LibC.fcntl(Handle.Fd, LibC.F_SETFD, LibC.FD_CLOEXEC);

    public void Dispose() => Handle.Dispose();
}
