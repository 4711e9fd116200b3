using System.Runtime.InteropServices;
using Multiprocessing.Platform.Linux;

namespace Multiprocessing.Platform;

/// <summary>
/// Tells when any process (not only our children) ends, without polling: one background thread sleeps in epoll over a
/// pidfd per watched process. Cross-process primitives use it to notice that a lock holder or a barrier party died.
/// </summary>
internal static unsafe class ProcessWatch
{
    private sealed class Watched(int pid, int pidfd)
    {
        public int Pid { get; } = pid;
        public int PidFd { get; } = pidfd;
        public List<Registration> Callbacks { get; } = [];
    }

    private sealed class Registration(int pid, Action onExit) : IDisposable
    {
        public int Pid { get; } = pid;
        public Action OnExit { get; } = onExit;

        public void Dispose() => Remove(this);
    }

    private static readonly System.Threading.Lock s_gate = new();
    private static readonly Dictionary<int, Watched> s_byPid = [];
    private static int s_epoll = -1;

    /// <summary>True if <paramref name="pid"/> names a process that has not ended (a zombie counts as ended).</summary>
    public static bool IsAlive(int pid)
    {
        RequireLinux();
        if (pid <= 0)
        {
            return false;
        }

        if (pid == Environment.ProcessId)
        {
            return true;
        }

        int pidfd = LibC.pidfd_open(pid);
        if (pidfd < 0)
        {
            return Marshal.GetLastPInvokeError() != LibC.ESRCH;
        }

        var fds = new LibC.PollFd { Fd = pidfd, Events = LibC.POLLIN };
        int ready = LibC.poll(&fds, 1, 0);
        _ = LibC.close(pidfd);
        return ready == 0;
    }

    /// <summary>
    /// Runs <paramref name="onExit"/> once <paramref name="pid"/> has ended: on the watcher thread, or before this returns
    /// (and then the result is null) when it has ended already. Dispose the result to stop watching. Callbacks must be
    /// short and must not throw.
    /// </summary>
    public static IDisposable? WhenExited(int pid, Action onExit)
    {
        RequireLinux();
        ArgumentNullException.ThrowIfNull(onExit);
        Registration registration = new(pid, onExit);
        bool ended = false;
        lock (s_gate)
        {
            if (!s_byPid.TryGetValue(pid, out Watched? watched))
            {
                int pidfd = pid > 0 ? LibC.pidfd_open(pid) : -1;
                if (pidfd < 0)
                {
                    ended = true; // ESRCH: gone already (and its pid may even be reused soon)
                }
                else
                {
                    EnsureThread();
                    watched = new Watched(pid, pidfd);
                    var ev = new LibC.EpollEvent { Events = LibC.EPOLLIN, Data = (ulong)pid };
                    if (LibC.epoll_ctl(s_epoll, LibC.EPOLL_CTL_ADD, pidfd, &ev) != 0)
                    {
                        int errno = Marshal.GetLastPInvokeError();
                        _ = LibC.close(pidfd);
                        throw new System.ComponentModel.Win32Exception(errno, "cannot watch a process");
                    }

                    s_byPid[pid] = watched;
                }
            }

            watched?.Callbacks.Add(registration);
        }

        if (ended)
        {
            onExit();
            return null;
        }

        return registration;
    }

    private static void Remove(Registration registration)
    {
        lock (s_gate)
        {
            if (s_byPid.TryGetValue(registration.Pid, out Watched? watched) && watched.Callbacks.Remove(registration)
                && watched.Callbacks.Count == 0)
            {
                Forget(watched);
            }
        }
    }

    private static void Forget(Watched watched)
    {
        s_byPid.Remove(watched.Pid);
        _ = LibC.epoll_ctl(s_epoll, LibC.EPOLL_CTL_DEL, watched.PidFd, null);
        _ = LibC.close(watched.PidFd);
    }

    private static void EnsureThread()
    {
        if (s_epoll >= 0)
        {
            return;
        }

        int epoll = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        if (epoll < 0)
        {
            throw new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError(), "cannot create the process watcher");
        }

        s_epoll = epoll;
        new Thread(Loop) { IsBackground = true, Name = "Multiprocessing process watch" }.Start();
    }

    private static void Loop()
    {
        const int Capacity = 32;
        LibC.EpollEvent* events = stackalloc LibC.EpollEvent[Capacity];
        while (true)
        {
            int n = LibC.epoll_wait(s_epoll, events, Capacity, -1);
            for (int i = 0; i < n; i++)
            {
                Registration[] callbacks;
                lock (s_gate)
                {
                    if (!s_byPid.TryGetValue((int)events[i].Data, out Watched? watched))
                    {
                        continue;
                    }

                    callbacks = [.. watched.Callbacks];
                    Forget(watched);
                }

                foreach (Registration callback in callbacks)
                {
                    try
                    {
                        callback.OnExit();
                    }
                    catch (Exception ex)
                    {
                        Console.Error.WriteLine($"Multiprocessing: a process-exit callback failed: {ex}");
                    }
                }
            }
        }
    }

    private static void RequireLinux()
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException(
                $"Multiprocessing cannot watch other processes on {RuntimeInformation.OSDescription} yet; only Linux is supported.");
        }
    }
}
