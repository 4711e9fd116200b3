using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>Waits until any of several OS handles is readable (data, end of stream, or a process that ended).</summary>
internal static unsafe class Readiness
{
    /// <summary>Whether one descriptor is readable, waiting up to <paramref name="timeoutMilliseconds"/> (negative: forever; 0: do not wait); allocates nothing.</summary>
    public static bool WaitOne(int fd, int timeoutMilliseconds)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Waiting on handles is not implemented for {RuntimeInformation.OSDescription} yet; Linux is supported.");
        }

        var poll = new Linux.LibC.PollFd { Fd = fd, Events = Linux.LibC.POLLIN };
        long deadline = timeoutMilliseconds < 0 ? -1 : Environment.TickCount64 + timeoutMilliseconds;
        while (true)
        {
            int wait = deadline < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
            int n = Linux.LibC.poll(&poll, 1, wait);
            if (n >= 0)
            {
                return n > 0 && poll.Revents != 0;
            }

            int errno = Marshal.GetLastPInvokeError();
            if (errno != Linux.LibC.EINTR)
            {
                throw new Win32Exception(errno, "poll failed");
            }
        }
    }

    /// <summary>Returns, for each descriptor, whether it is ready; all false when the timeout passes. A negative timeout waits forever.</summary>
    public static bool[] Wait(ReadOnlySpan<int> fds, int timeoutMilliseconds)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Waiting on handles is not implemented for {RuntimeInformation.OSDescription} yet; Linux is supported.");
        }

        var polls = new Linux.LibC.PollFd[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            polls[i] = new Linux.LibC.PollFd { Fd = fds[i], Events = Linux.LibC.POLLIN };
        }

        long deadline = timeoutMilliseconds < 0 ? -1 : Environment.TickCount64 + timeoutMilliseconds;
        fixed (Linux.LibC.PollFd* first = polls)
        {
            while (true)
            {
                int wait = deadline < 0 ? -1 : (int)Math.Max(0, deadline - Environment.TickCount64);
                int n = Linux.LibC.poll(first, (nuint)polls.Length, wait);
                if (n >= 0)
                {
                    break;
                }

                int errno = Marshal.GetLastPInvokeError();
                if (errno != Linux.LibC.EINTR)
                {
                    throw new Win32Exception(errno, "poll failed");
                }
            }
        }

        var ready = new bool[fds.Length];
        for (int i = 0; i < fds.Length; i++)
        {
            ready[i] = polls[i].Revents != 0;
        }

        return ready;
    }
}
