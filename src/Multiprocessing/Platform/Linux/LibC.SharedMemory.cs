using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>Advisory locks and file identity: how named shared memory knows who still uses a block.</summary>
internal static unsafe partial class LibC
{
    public const int LOCK_SH = 1;
    public const int LOCK_EX = 2;
    public const int LOCK_NB = 4;
    public const int EWOULDBLOCK = 11;

    public const int AT_FDCWD = -100;
    public const int AT_EMPTY_PATH = 0x1000;
    public const uint STATX_NLINK = 0x4;
    public const uint STATX_INO = 0x100;

    /// <summary>The leading part of struct statx that identity checks read (the kernel writes all 256 bytes).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 256)]
    public struct StatX
    {
        [FieldOffset(16)]
        public uint NLink;

        [FieldOffset(32)]
        public ulong Inode;

        [FieldOffset(136)]
        public uint DeviceMajor;

        [FieldOffset(140)]
        public uint DeviceMinor;
    }

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int flock(int fd, int operation);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int statx(int directoryFd, string path, int flags, uint mask, StatX* result);
}
