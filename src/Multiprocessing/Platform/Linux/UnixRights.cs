using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>
/// Sends and receives bytes together with open file descriptors (SCM_RIGHTS) over an AF_UNIX stream socket: how a
/// connection or other OS handle reaches another process. The descriptors travel with the first byte of the data.
/// </summary>
internal static unsafe class UnixRights
{
    /// <summary>Most descriptors one message may carry.</summary>
    public const int MaximumDescriptors = 250;

    private const int HeaderSize = 16; // cmsghdr: size_t length, int level, int type

    /// <summary>
    /// Sends all of <paramref name="data"/> over <paramref name="socket"/> with <paramref name="handles"/> attached,
    /// holding a reference on every handle meanwhile: none can be closed under the call, and a Dispose of the socket from
    /// another thread wakes it instead of leaving it blocked on a descriptor number that may be reused.
    /// </summary>
    public static void SendAll(SafeHandle socket, ReadOnlySpan<byte> data, IReadOnlyList<SafeHandle>? handles)
    {
        int count = handles?.Count ?? 0;
        if (count > MaximumDescriptors)
        {
            throw new IOException($"A message can carry at most {MaximumDescriptors} OS handles; this one has {count}.");
        }

        var held = new List<SafeHandle>(count + 1);
        try
        {
            Hold(socket, held);
            Span<int> fds = stackalloc int[count];
            for (int i = 0; i < count; i++)
            {
                Hold(handles![i], held);
                fds[i] = (int)handles[i].DangerousGetHandle();
            }

            SendAll((int)socket.DangerousGetHandle(), data, fds);
        }
        finally
        {
            foreach (SafeHandle handle in held)
            {
                handle.DangerousRelease();
            }
        }
    }

    private static void Hold(SafeHandle handle, List<SafeHandle> held)
    {
        bool added = false;
        handle.DangerousAddRef(ref added);
        held.Add(handle);
    }

    /// <summary>Sends all of <paramref name="data"/>, the descriptors attached to its first byte; blocks while the peer is slow.</summary>
    private static void SendAll(int socket, ReadOnlySpan<byte> data, ReadOnlySpan<int> fds)
    {
        int controlLength = fds.IsEmpty ? 0 : HeaderSize + Align(fds.Length * sizeof(int));
        byte* control = stackalloc byte[Math.Max(controlLength, 1)];
        if (controlLength > 0)
        {
            new Span<byte>(control, controlLength).Clear();
            *(nuint*)control = (nuint)(HeaderSize + (fds.Length * sizeof(int)));
            *(int*)(control + 8) = LibC.SOL_SOCKET;
            *(int*)(control + 12) = LibC.SCM_RIGHTS;
            fds.CopyTo(new Span<int>(control + HeaderSize, fds.Length));
        }

        fixed (byte* start = data)
        {
            int done = 0;
            bool attached = false;
            while (done < data.Length || (data.IsEmpty && !attached))
            {
                var iov = new LibC.IoVec { Base = start + done, Length = (nuint)(data.Length - done) };
                var header = new LibC.MsgHdr { Iov = &iov, IovLength = 1 };
                if (!attached && controlLength > 0)
                {
                    header.Control = control;
                    header.ControlLength = (nuint)controlLength;
                }

                nint n = LibC.sendmsg(socket, &header, LibC.MSG_NOSIGNAL);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.EINTR)
                    {
                        continue;
                    }

                    if (errno == LibC.EAGAIN)
                    {
                        WaitFor(socket, LibC.POLLOUT);
                        continue;
                    }

                    throw new IOException($"Sending failed (is the other end closed?): {Marshal.GetPInvokeErrorMessage(errno)}");
                }

                attached = true;
                done += (int)n;
            }
        }
    }

    /// <summary>Receives up to <paramref name="buffer"/>.Length bytes, adding any descriptors that came with them to <paramref name="fds"/>; 0 at end of stream.</summary>
    public static int Receive(int socket, Span<byte> buffer, List<int> fds)
    {
        int controlLength = HeaderSize + Align(MaximumDescriptors * sizeof(int));
        byte* control = stackalloc byte[controlLength];
        fixed (byte* start = buffer)
        {
            while (true)
            {
                var iov = new LibC.IoVec { Base = start, Length = (nuint)buffer.Length };
                var header = new LibC.MsgHdr { Iov = &iov, IovLength = 1, Control = control, ControlLength = (nuint)controlLength };
                nint n = LibC.recvmsg(socket, &header, LibC.MSG_CMSG_CLOEXEC);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.EINTR)
                    {
                        continue;
                    }

                    if (errno == LibC.EAGAIN)
                    {
                        WaitFor(socket, LibC.POLLIN);
                        continue;
                    }

                    throw new IOException($"Receiving failed: {Marshal.GetPInvokeErrorMessage(errno)}");
                }

                CollectDescriptors(&header, fds);
                return (int)n;
            }
        }
    }

    private static void CollectDescriptors(LibC.MsgHdr* header, List<int> fds)
    {
        byte* cursor = (byte*)header->Control;
        byte* end = cursor + header->ControlLength;
        while (cursor + HeaderSize <= end)
        {
            nuint length = *(nuint*)cursor;
            if (length < HeaderSize || cursor + (long)length > end)
            {
                break;
            }

            if (*(int*)(cursor + 8) == LibC.SOL_SOCKET && *(int*)(cursor + 12) == LibC.SCM_RIGHTS)
            {
                int count = (int)((length - HeaderSize) / sizeof(int));
                for (int i = 0; i < count; i++)
                {
                    fds.Add(*(int*)(cursor + HeaderSize + (i * sizeof(int))));
                }
            }

            cursor += HeaderSize + Align((int)length - HeaderSize);
        }

        if ((header->Flags & LibC.MSG_CTRUNC) != 0)
        {
            foreach (int fd in fds)
            {
                _ = LibC.close(fd);
            }

            fds.Clear();
            throw new IOException($"A message arrived with more than {MaximumDescriptors} OS handles; they were closed.");
        }
    }

    private static void WaitFor(int socket, short events)
    {
        var pfd = new LibC.PollFd { Fd = socket, Events = events };
        _ = LibC.poll(&pfd, 1, -1);
    }

    private static int Align(int length) => (length + 7) & ~7;
}
