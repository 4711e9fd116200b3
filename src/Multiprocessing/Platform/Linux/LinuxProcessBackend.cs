using System.ComponentModel;
using System.Runtime.InteropServices;
using System.Text;

namespace Multiprocessing.Platform.Linux;

/// <summary>Starts children with posix_spawn, watches them through pidfds and talks to them over a socketpair.</summary>
internal sealed unsafe class LinuxProcessBackend : IProcessBackend
{
    private readonly Lazy<ChildReaper> _reaper = new(() => new ChildReaper());

    public int ParentPid => LibC.getppid();

    public int TerminateSignal => LibC.SIGTERM;

    public int KillSignal => LibC.SIGKILL;

    public LaunchedChild Launch(string executable, IReadOnlyList<string> arguments, IReadOnlyList<string> environment, int controlFd)
    {
        int* pair = stackalloc int[2];
        if (LibC.socketpair(LibC.AF_UNIX, LibC.SOCK_STREAM | LibC.SOCK_CLOEXEC, 0, pair) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "socketpair failed while starting a child process");
        }

        var parentEnd = new FileDescriptorHandle(pair[0]);
        // dup2 onto itself would leave FD_CLOEXEC set, so an end that already sits at the target number moves first.
        var childEnd = new FileDescriptorHandle(pair[1] == controlFd ? LibC.fcntl(pair[1], LibC.F_DUPFD_CLOEXEC, controlFd + 1) : pair[1]);
        if (pair[1] == controlFd)
        {
            _ = LibC.close(pair[1]);
        }

        try
        {
            int pid = Spawn(executable, arguments, environment, childEnd.Fd, controlFd);
            int pidfd = LibC.pidfd_open(pid);
            if (pidfd < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                _ = LibC.kill(pid, LibC.SIGKILL);
                throw new Win32Exception(errno, "pidfd_open failed (Linux 5.3 or later is required)");
            }

            return new LaunchedChild(pid, new FileDescriptorHandle(pidfd), new SocketChannel(parentEnd));
        }
        catch
        {
            parentEnd.Dispose();
            throw;
        }
        finally
        {
            childEnd.Dispose();
        }
    }

    private static int Spawn(string executable, IReadOnlyList<string> arguments, IReadOnlyList<string> environment, int inheritedFd, int targetFd)
    {
        // posix_spawn_file_actions_t is 80 bytes and posix_spawnattr_t 336 bytes on glibc x64; over-allocate.
        byte* actions = stackalloc byte[512];
        byte* attributes = stackalloc byte[1024];
        byte* signals = stackalloc byte[128];
        var pinned = new List<nint>();
        try
        {
            byte* path = Utf8(executable, pinned);
            byte** argv = NullTerminated(arguments, pinned);
            byte** envp = NullTerminated(environment, pinned);
            byte* devNull = Utf8("/dev/null", pinned);

            Check(LibC.posix_spawn_file_actions_init(actions), "posix_spawn_file_actions_init");
            Check(LibC.posix_spawnattr_init(attributes), "posix_spawnattr_init");
            try
            {
                Check(LibC.posix_spawn_file_actions_adddup2(actions, inheritedFd, targetFd), "adddup2");
                Check(LibC.posix_spawn_file_actions_addopen(actions, 0, devNull, LibC.O_RDONLY, 0), "addopen");

                // The runtime blocks and ignores some signals; the child starts with defaults and nothing blocked.
                _ = LibC.sigemptyset(signals);
                Check(LibC.posix_spawnattr_setsigmask(attributes, signals), "setsigmask");
                _ = LibC.sigemptyset(signals);
                for (int signal = 1; signal < 32; signal++)
                {
                    if (signal != LibC.SIGKILL && signal != 19)
                    {
                        _ = LibC.sigaddset(signals, signal);
                    }
                }

                Check(LibC.posix_spawnattr_setsigdefault(attributes, signals), "setsigdefault");
                Check(LibC.posix_spawnattr_setflags(attributes, LibC.POSIX_SPAWN_SETSIGDEF | LibC.POSIX_SPAWN_SETSIGMASK), "setflags");

                int error = LibC.posix_spawn(out int pid, path, actions, attributes, argv, envp);
                if (error != 0)
                {
                    throw new Win32Exception(error, $"posix_spawn of '{executable}' failed");
                }

                return pid;
            }
            finally
            {
                _ = LibC.posix_spawn_file_actions_destroy(actions);
                _ = LibC.posix_spawnattr_destroy(attributes);
            }
        }
        finally
        {
            foreach (nint p in pinned)
            {
                NativeMemory.Free((void*)p);
            }
        }
    }

    private static void Check(int result, string what)
    {
        if (result != 0)
        {
            throw new Win32Exception(result, what + " failed while starting a child process");
        }
    }

    private static byte* Utf8(string text, List<nint> pinned)
    {
        int length = Encoding.UTF8.GetByteCount(text);
        byte* buffer = (byte*)NativeMemory.Alloc((nuint)length + 1);
        pinned.Add((nint)buffer);
        Encoding.UTF8.GetBytes(text, new Span<byte>(buffer, length));
        buffer[length] = 0;
        return buffer;
    }

    private static byte** NullTerminated(IReadOnlyList<string> items, List<nint> pinned)
    {
        byte** array = (byte**)NativeMemory.Alloc((nuint)(items.Count + 1), (nuint)sizeof(byte*));
        pinned.Add((nint)array);
        for (int i = 0; i < items.Count; i++)
        {
            array[i] = Utf8(items[i], pinned);
        }

        array[items.Count] = null;
        return array;
    }

    public IControlChannel AdoptInheritedChannel(int fd) => new SocketChannel(new FileDescriptorHandle(fd));

    public SafeHandle? OpenSentinel(int pid)
    {
        int fd = LibC.pidfd_open(pid);
        return fd < 0 ? null : new FileDescriptorHandle(fd);
    }

    public bool WaitSentinel(SafeHandle sentinel, TimeSpan timeout)
    {
        long deadline = timeout == Timeout.InfiniteTimeSpan ? -1 : Environment.TickCount64 + (long)Math.Ceiling(timeout.TotalMilliseconds);
        bool added = false;
        try
        {
            sentinel.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            return true; // a sentinel is released only once its process has been reaped: it has ended
        }

        try
        {
            while (true)
            {
                int wait = deadline < 0 ? -1 : (int)Math.Clamp(deadline - Environment.TickCount64, 0, int.MaxValue);
                var pfd = new LibC.PollFd { Fd = (int)sentinel.DangerousGetHandle(), Events = LibC.POLLIN };
                int n = LibC.poll(&pfd, 1, wait);
                if (n > 0)
                {
                    return true;
                }

                if (n == 0)
                {
                    return false;
                }

                if (Marshal.GetLastPInvokeError() != LibC.EINTR)
                {
                    throw new Win32Exception(Marshal.GetLastPInvokeError(), "poll on a process sentinel failed");
                }
            }
        }
        finally
        {
            sentinel.DangerousRelease();
        }
    }

    public bool Signal(SafeHandle sentinel, int signal)
    {
        bool added = false;
        try
        {
            sentinel.DangerousAddRef(ref added);
        }
        catch (ObjectDisposedException)
        {
            return false; // released: the process has been reaped
        }

        try
        {
            return LibC.pidfd_send_signal((int)sentinel.DangerousGetHandle(), signal) == 0;
        }
        finally
        {
            sentinel.DangerousRelease();
        }
    }

    public void RemoveRuntimeLeftovers(int pid) => RuntimeLeftovers.Remove(pid);

    public void Watch(LaunchedChild child) => _reaper.Value.Add(child);

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void ExitImmediately(int exitCode)
    {
        RuntimeLeftovers.Remove(Environment.ProcessId); // _exit skips the runtime's own clean-up
        LibC._exit(exitCode);
        throw new InvalidOperationException("_exit returned");
    }

    /// <summary>How many helpers of ended children have been reaped (for tests).</summary>
    internal long TeardownHelpersReaped => _reaper.IsValueCreated ? _reaper.Value.TeardownHelpersReaped : 0;

    public void AwaitTeardownHelpers(TimeSpan timeout)
    {
        if (_reaper.IsValueCreated)
        {
            _reaper.Value.AwaitTeardownHelpers(timeout);
        }
    }

    public void PrepareExit()
    {
        try
        {
            RuntimeLeftovers.PrepareOwn();
            TeardownHelper.Prepare();
        }
        catch (Exception ex)
        {
            // Only a head start (the exit works these out itself), on a thread that must not die of it.
            System.Diagnostics.Debug.WriteLine("Multiprocessing: preparing the exit failed: " + ex);
        }
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void ExitAfterTarget(int exitCode, IControlChannel control)
    {
        RuntimeLeftovers.Remove(Environment.ProcessId); // _exit skips the runtime's own clean-up
        if (control is SocketChannel socket)
        {
            _ = TeardownHelper.TryStart(socket.Handle.Fd);
        }

        LibC._exit(exitCode);
        throw new InvalidOperationException("_exit returned");
    }

    public void RestoreDefaultTerminationSignal() => _ = LibC.signal(LibC.SIGTERM, 0);

    public void RemoveEnvironmentVariable(string name)
    {
        _ = LibC.unsetenv(name);

        // Until something sets a variable, .NET reads the native environment directly; materializing its managed copy
        // (which SetEnvironmentVariable does) costs a cold child a millisecond, so it is only touched if it still shows the name.
        if (Environment.GetEnvironmentVariable(name) is not null)
        {
            Environment.SetEnvironmentVariable(name, null);
        }
    }
}
