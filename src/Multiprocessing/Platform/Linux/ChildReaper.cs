using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>
/// One background thread that sleeps in epoll over every child's pidfd and control socket: it reads what children
/// report as they write it (so a large report never blocks a child) and reaps each child the moment it ends.
/// </summary>
internal sealed unsafe class ChildReaper
{
    private sealed record Entry(LaunchedChild Child, SocketChannel Control)
    {
        public bool ControlOpen { get; set; } = true;
    }

    private readonly int _epoll;
    private readonly int _wakeup;
    private readonly System.Threading.Lock _gate = new();
    private readonly Dictionary<int, Entry> _entries = [];
    private readonly Dictionary<int, int> _teardownHelpers = []; // key → pidfd of a helper that frees an ended child's memory
    private readonly object _helperCountGate = new();
    private int _helperCount;
    private long _helpersReaped;
    private readonly System.Collections.Generic.Queue<(int Key, Entry Entry)> _pending = new();
    private int _nextKey;

    public ChildReaper()
    {
        _epoll = LibC.epoll_create1(LibC.EPOLL_CLOEXEC);
        _wakeup = LibC.eventfd(0, LibC.EFD_CLOEXEC);
        if (_epoll < 0 || _wakeup < 0)
        {
            throw new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError(), "cannot create the child watcher");
        }

        AddFd(_wakeup, 0);
        var thread = new Thread(Loop) { IsBackground = true, Name = "Multiprocessing child reaper" };
        thread.Start();
    }

    /// <summary>How many teardown helpers this watcher has reaped (for tests: shows the fast exit is in use).</summary>
    public long TeardownHelpersReaped => Interlocked.Read(ref _helpersReaped);

    public void Add(LaunchedChild child)
    {
        lock (_gate)
        {
            // Keys are even for pidfds and odd for control sockets; 0 is the wakeup eventfd.
            int key = (++_nextKey) * 2;
            _pending.Enqueue((key, new Entry(child, (SocketChannel)child.Control)));
        }

        ulong one = 1;
        _ = LibC.write(_wakeup, (byte*)&one, 8);
    }

    private void AddFd(int fd, ulong data)
    {
        var ev = new LibC.EpollEvent { Events = LibC.EPOLLIN, Data = data };
        if (LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_ADD, fd, &ev) != 0)
        {
            throw new System.ComponentModel.Win32Exception(Marshal.GetLastPInvokeError(), "epoll_ctl failed");
        }
    }

    private void Loop()
    {
        const int Capacity = 64;
        LibC.EpollEvent* events = stackalloc LibC.EpollEvent[Capacity];
        while (true)
        {
            int n = LibC.epoll_wait(_epoll, events, Capacity, -1);
            if (n < 0)
            {
                continue; // EINTR
            }

            for (int i = 0; i < n; i++)
            {
                try
                {
                    Handle(events[i].Data);
                }
                catch (Exception ex)
                {
                    // This thread reaps every child: one failure must not take it (or the process) down.
                    Console.Error.WriteLine($"Multiprocessing: the child watcher hit an error and goes on: {ex}");
                }
            }
        }
    }

    private void Handle(ulong data)
    {
        if (data == 0)
        {
            ulong value;
            _ = LibC.read(_wakeup, (byte*)&value, 8);
            AdmitPending();
            return;
        }

        int key = (int)(data & ~1UL);
        if (!_entries.TryGetValue(key, out Entry? entry))
        {
            if (_teardownHelpers.TryGetValue(key, out int helper))
            {
                TryReapHelper(key, helper);
            }

            return;
        }

        if ((data & 1) == 1)
        {
            ReadControl(entry);
        }
        else
        {
            TryReap(key, entry);
        }
    }

    private void AdmitPending()
    {
        while (true)
        {
            (int Key, Entry Entry) item;
            lock (_gate)
            {
                if (!_pending.TryDequeue(out item))
                {
                    return;
                }
            }

            bool added = false;
            item.Entry.Child.Sentinel.DangerousAddRef(ref added);
            _entries[item.Key] = item.Entry;
            AddFd(item.Entry.Control.Handle.Fd, (ulong)item.Key | 1);
            AddFd((int)item.Entry.Child.Sentinel.DangerousGetHandle(), (ulong)item.Key);
        }
    }

    private void ReadControl(Entry entry)
    {
        if (entry.ControlOpen && !entry.Control.DrainAvailable(entry.Child.Received))
        {
            entry.ControlOpen = false;
            _ = LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_DEL, entry.Control.Handle.Fd, null);
        }
    }

    private static void Notify(LaunchedChild child, int exitCode)
    {
        try
        {
            child.NotifyExited(exitCode);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: exit callback for pid {child.Pid} failed: {ex}");
        }
    }

    /// <summary>Reaps, when it ends, the helper that the ended <paramref name="child"/> said frees its memory (see <see cref="TeardownHelper"/>).</summary>
    private void WatchTeardownHelper(LaunchedChild child)
    {
        if (!child.Received.TryGetBuffer(out ArraySegment<byte> received) || TeardownHelper.FindReportedPid(received) is not int pid)
        {
            return;
        }

        // The helper is this process's child, so its pid cannot have been reused before it is reaped here.
        int pidfd = LibC.pidfd_open(pid);
        if (pidfd < 0)
        {
            return;
        }

        int key;
        lock (_gate)
        {
            key = (++_nextKey) * 2;
        }

        _teardownHelpers[key] = pidfd;
        AddFd(pidfd, (ulong)key);
        lock (_helperCountGate)
        {
            _helperCount++;
        }
    }

    /// <summary>Waits up to <paramref name="timeout"/> until every teardown helper this watcher knows of has been reaped.</summary>
    public void AwaitTeardownHelpers(TimeSpan timeout)
    {
        long deadline = Environment.TickCount64 + (long)timeout.TotalMilliseconds;
        lock (_helperCountGate)
        {
            while (_helperCount > 0)
            {
                long left = deadline - Environment.TickCount64;
                if (left <= 0 || !Monitor.Wait(_helperCountGate, (int)left))
                {
                    return;
                }
            }
        }
    }

    private void TryReapHelper(int key, int pidfd)
    {
        byte* siginfo = stackalloc byte[128];
        new Span<byte>(siginfo, 128).Clear();
        int result = LibC.waitid(LibC.P_PIDFD, pidfd, siginfo, LibC.WEXITED | LibC.WNOHANG);
        if (result == 0 && *(int*)(siginfo + 16) == 0)
        {
            return; // still running
        }

        // Reaped now, or by someone else (ECHILD): either way it is done.
        _ = LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_DEL, pidfd, null);
        _ = LibC.close(pidfd);
        _teardownHelpers.Remove(key);
        Interlocked.Increment(ref _helpersReaped);
        lock (_helperCountGate)
        {
            _helperCount--;
            Monitor.PulseAll(_helperCountGate);
        }
    }

    private void TryReap(int key, Entry entry)
    {
        byte* siginfo = stackalloc byte[128];
        new Span<byte>(siginfo, 128).Clear();
        int pidfd = (int)entry.Child.Sentinel.DangerousGetHandle();

        // Look first without reaping: a child killed by a signal could not clean up after its runtime, and while it
        // is a zombie its pid cannot be reused, so its leftovers are unambiguously its own.
        if (LibC.waitid(LibC.P_PIDFD, pidfd, siginfo, LibC.WEXITED | LibC.WNOHANG | LibC.WNOWAIT) == 0
            && *(int*)(siginfo + 16) != 0 && *(int*)(siginfo + 8) != LibC.CLD_EXITED)
        {
            RuntimeLeftovers.Remove(entry.Child.Pid);
        }

        new Span<byte>(siginfo, 128).Clear();
        int result = LibC.waitid(LibC.P_PIDFD, pidfd, siginfo, LibC.WEXITED | LibC.WNOHANG);
        int pid = *(int*)(siginfo + 16);
        if (result == 0 && pid == 0)
        {
            return; // not ended yet (spurious wakeup)
        }

        int exitCode = -LibC.SIGKILL; // reaped by someone else: the status is lost
        if (result == 0)
        {
            int code = *(int*)(siginfo + 8);
            int status = *(int*)(siginfo + 24);
            exitCode = code == LibC.CLD_EXITED ? status : -status;
        }

        _ = LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_DEL, pidfd, null);
        if (entry.ControlOpen)
        {
            // The child is gone, so everything it wrote is already buffered.
            _ = entry.Control.DrainAvailable(entry.Child.Received);
            _ = LibC.epoll_ctl(_epoll, LibC.EPOLL_CTL_DEL, entry.Control.Handle.Fd, null);
            entry.ControlOpen = false;
        }

        _entries.Remove(key);
        WatchTeardownHelper(entry.Child);
        entry.Control.Dispose();
        entry.Child.Sentinel.DangerousRelease();
        Notify(entry.Child, exitCode);
    }
}
