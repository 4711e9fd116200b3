using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>What the queues' sparse message ring needs beyond mapping: giving consumed pages back to the OS.</summary>
internal static unsafe partial class LibC
{
    public const int FALLOC_FL_KEEP_SIZE = 1;
    public const int FALLOC_FL_PUNCH_HOLE = 2;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fallocate(int fd, int mode, long offset, long length);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial int fstat(int fd, byte* stat);

    /// <summary>The bytes allocated to a file (st_blocks × 512), -1 on error.</summary>
    public static long AllocatedBytes(int fd)
    {
        byte* stat = stackalloc byte[256];
        return fstat(fd, stat) == 0 ? *(long*)(stat + 64) * 512 : -1; // x86_64 and arm64 struct stat: st_blocks at 64
    }
}
