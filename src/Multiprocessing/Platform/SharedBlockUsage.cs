using System.ComponentModel;
using System.Runtime.InteropServices;
using Multiprocessing.Platform.Linux;

namespace Multiprocessing.Platform;

/// <summary>
/// Who still uses a named block, told by the kernel: every process that maps one holds a shared <c>flock</c> on it,
/// which the kernel drops when the last descriptor and mapping of that process go (whatever way it ends). A tracker
/// that obtains the exclusive lock on its own open of the file therefore knows the last user is gone.
/// </summary>
internal static unsafe class SharedBlockUsage
{
    private const string Directory = "/dev/shm/";

    /// <summary>Marks this process as a user of the block behind <paramref name="region"/> (a shared lock on its open file).</summary>
    public static void MarkInUse(SharedRegion region)
    {
        int fd = Fd(region.Handle);
        while (LibC.flock(fd, LibC.LOCK_SH) != 0)
        {
            ThrowUnlessInterrupted("cannot mark a shared memory block as in use");
        }
    }

    /// <summary>Whether the file behind <paramref name="handle"/> no longer has a name (someone unlinked it).</summary>
    public static bool IsUnlinked(SafeHandle handle) => Stat(handle).NLink == 0;

    /// <summary>A new descriptor for the same open file (it shares its locks).</summary>
    public static SafeHandle Duplicate(SafeHandle handle)
    {
        int fd = LibC.fcntl(Fd(handle), LibC.F_DUPFD_CLOEXEC, 0);
        return fd >= 0 ? new FileDescriptorHandle(fd) : throw new Win32Exception(Marshal.GetLastPInvokeError(), "cannot duplicate a shared memory descriptor");
    }

    /// <summary>
    /// Opens the file behind the received descriptor <paramref name="fd"/> afresh (an open file of its own, whose locks
    /// conflict with the sender's) and closes <paramref name="fd"/>.
    /// </summary>
    public static SafeHandle ReopenAndClose(int fd)
    {
        try
        {
            int own = LibC.open("/proc/self/fd/" + fd.ToString(System.Globalization.CultureInfo.InvariantCulture), LibC.O_RDWR | LibC.O_CLOEXEC, 0);
            return own >= 0 ? new FileDescriptorHandle(own) : throw new Win32Exception(Marshal.GetLastPInvokeError(), "cannot reopen a shared memory block");
        }
        finally
        {
            _ = LibC.close(fd);
        }
    }

    /// <summary>Blocks until no process holds a shared lock on the block (the exclusive lock is then held through <paramref name="handle"/>).</summary>
    public static void WaitUntilUnused(SafeHandle handle)
    {
        int fd = Fd(handle);
        while (LibC.flock(fd, LibC.LOCK_EX) != 0)
        {
            ThrowUnlessInterrupted("cannot wait for the users of a shared memory block");
        }
    }

    /// <summary>Removes <paramref name="name"/> if it still names the file behind <paramref name="handle"/> (not a newer block that reused the name).</summary>
    public static bool UnlinkIfSame(string name, SafeHandle handle)
    {
        LibC.StatX mine = Stat(handle);
        LibC.StatX named;
        string path = Directory + name.TrimStart('/');
        if (LibC.statx(LibC.AT_FDCWD, path, 0, LibC.STATX_INO, &named) != 0)
        {
            return false; // gone already
        }

        return named.Inode == mine.Inode && named.DeviceMajor == mine.DeviceMajor && named.DeviceMinor == mine.DeviceMinor
            && LibC.unlink(path) == 0;
    }

    private static LibC.StatX Stat(SafeHandle handle)
    {
        LibC.StatX result;
        if (LibC.statx(Fd(handle), "", LibC.AT_EMPTY_PATH, LibC.STATX_INO | LibC.STATX_NLINK, &result) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "cannot inspect a shared memory block");
        }

        return result;
    }

    private static int Fd(SafeHandle handle)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Tracking the users of shared memory is implemented for Linux only; {RuntimeInformation.OSDescription} is not supported yet.");
        }

        ObjectDisposedException.ThrowIf(handle.IsClosed, handle);
        return (int)handle.DangerousGetHandle();
    }

    private static void ThrowUnlessInterrupted(string what)
    {
        int errno = Marshal.GetLastPInvokeError();
        if (errno != LibC.EINTR)
        {
            throw new Win32Exception(errno, what);
        }
    }
}
