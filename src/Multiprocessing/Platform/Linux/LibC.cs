using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>The libc and raw syscall entry points the Linux backend uses; errno is read at each call site.</summary>
internal static unsafe partial class LibC
{
    // The exact soname: a bare "libc" makes the runtime probe several names (and a linker script) first.
    private const string Lib = "libc.so.6";

    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ECHILD = 10;
    public const int ESRCH = 3;

    public const int AF_UNIX = 1;
    public const int SOCK_STREAM = 1;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_NOSIGNAL = 0x4000;

    public const int F_GETFD = 1;
    public const int F_SETFD = 2;
    public const int FD_CLOEXEC = 1;
    public const int F_DUPFD_CLOEXEC = 1030;
    public const int O_RDONLY = 0;

    public const int SIGKILL = 9;
    public const int SIGTERM = 15;

    public const int P_PIDFD = 3;
    public const int WNOHANG = 1;
    public const int WEXITED = 4;
    public const int WNOWAIT = 0x01000000;
    public const int CLD_EXITED = 1;
    public const int CLD_KILLED = 2;
    public const int CLD_DUMPED = 3;

    public const short POSIX_SPAWN_SETSIGDEF = 0x04;
    public const short POSIX_SPAWN_SETSIGMASK = 0x08;

    public const int EPOLL_CLOEXEC = 0x80000;
    public const int EPOLL_CTL_ADD = 1;
    public const int EPOLL_CTL_DEL = 2;
    public const uint EPOLLIN = 0x001;
    public const uint EPOLLHUP = 0x010;
    public const int EFD_CLOEXEC = 0x80000;

    public const short POLLIN = 0x001;
    public const short POLLERR = 0x008;
    public const short POLLHUP = 0x010;
    public const short POLLNVAL = 0x020;
    public const short POLLRDHUP = 0x2000;

    private const long SYS_pidfd_send_signal = 424;
    private const long SYS_pidfd_open = 434;

    [StructLayout(LayoutKind.Sequential, Pack = 1)]
    public struct EpollEvent
    {
        public uint Events;
        public ulong Data;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int posix_spawn(out int pid, byte* path, void* fileActions, void* attributes, byte** argv, byte** envp);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_init(void* actions);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_destroy(void* actions);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_adddup2(void* actions, int fd, int newFd);

    [LibraryImport(Lib)]
    public static partial int posix_spawn_file_actions_addopen(void* actions, int fd, byte* path, int oflag, int mode);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_init(void* attributes);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_destroy(void* attributes);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setflags(void* attributes, short flags);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setsigmask(void* attributes, void* sigset);

    [LibraryImport(Lib)]
    public static partial int posix_spawnattr_setsigdefault(void* attributes, void* sigset);

    [LibraryImport(Lib)]
    public static partial int sigemptyset(void* set);

    [LibraryImport(Lib)]
    public static partial int sigaddset(void* set, int signal);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int socketpair(int domain, int type, int protocol, int* fds);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int close(int fd);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fcntl(int fd, int command, int argument);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint send(int fd, byte* buffer, nint length, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recv(int fd, byte* buffer, nint length, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint read(int fd, byte* buffer, nint length);

    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    public const int SOL_SOCKET = 1;
    public const int SCM_RIGHTS = 1;
    public const int MSG_CMSG_CLOEXEC = 0x40000000;
    public const int MSG_CTRUNC = 0x8;
    public const short POLLOUT = 0x004;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint sendmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint recvmsg(int fd, MsgHdr* message, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial nint write(int fd, byte* buffer, nint length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int kill(int pid, int signal);

    [LibraryImport(Lib)]
    public static partial int getppid();

    [LibraryImport(Lib, SetLastError = true)]
    private static partial long syscall(long number, long a1, long a2, long a3, long a4);

    /// <summary>
    /// Blocks every signal on the calling thread with the raw rt_sigprocmask (whose set is the kernel's 8-byte mask;
    /// glibc's wrapper refuses some); false where the call's number is not known here.
    /// </summary>
    public static bool BlockAllSignals()
    {
        long number = RuntimeInformation.ProcessArchitecture switch
        {
            Architecture.X64 => 14,
            Architecture.Arm64 => 135,
            _ => -1,
        };
        ulong all = ulong.MaxValue;
        return number >= 0 && syscall(number, 0 /* SIG_BLOCK */, (long)&all, 0, 8) == 0;
    }

    public static int pidfd_open(int pid) => (int)syscall(SYS_pidfd_open, pid, 0, 0, 0);

    public static int pidfd_send_signal(int pidfd, int signal) => (int)syscall(SYS_pidfd_send_signal, pidfd, signal, 0, 0);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int waitid(int idType, int id, byte* siginfo, int options);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_create1(int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_ctl(int epfd, int op, int fd, EpollEvent* ev);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int epoll_wait(int epfd, EpollEvent* events, int maxEvents, int timeout);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int eventfd(uint initial, int flags);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int poll(PollFd* fds, nuint count, int timeout);

    [LibraryImport(Lib)]
    public static partial nint signal(int signal, nint handler);

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unsetenv(string name);

    [LibraryImport(Lib)]
    public static partial void _exit(int status);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int unlink(string path);
}
