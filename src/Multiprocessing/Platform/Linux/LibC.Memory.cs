using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>Shared memory, futexes and thread ids.</summary>
internal static unsafe partial class LibC
{
    public const int EEXIST = 17;
    public const int ENOENT = 2;
    public const int ETIMEDOUT = 110;

    public const int O_RDWR = 2;
    public const int O_CREAT = 0x40;
    public const int O_EXCL = 0x80;
    public const int O_NOFOLLOW = 0x20000;
    public const int O_CLOEXEC = 0x80000;

    public const uint MFD_CLOEXEC = 1;
    public const int PROT_READ = 1;
    public const int PROT_WRITE = 2;
    public const int MAP_SHARED = 1;
    public const int SEEK_END = 2;

    public const int FUTEX_WAIT_BITSET = 9;
    public const int FUTEX_WAKE = 1;
    public const int FUTEX_CLOCK_REALTIME = 256;
    public const uint FUTEX_BITSET_MATCH_ANY = 0xFFFFFFFF;

    private const long SYS_futex = 202;
    private const long SYS_gettid = 186;

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int memfd_create(string name, uint flags);

    [LibraryImport(Lib, SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int open(string path, int flags, int mode);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int ftruncate(int fd, long length);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial long lseek(int fd, long offset, int whence);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial void* mmap(void* address, nuint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int munmap(void* address, nuint length);

    [LibraryImport(Lib, SetLastError = true)]
    private static partial long syscall(long number, void* a1, long a2, long a3, void* a4, void* a5, long a6);

    /// <summary>FUTEX_WAIT_BITSET (shared, CLOCK_MONOTONIC): sleeps while *word == expected, until woken or the absolute deadline.</summary>
    public static long FutexWaitUntil(int* word, int expected, TimeSpec* deadline)
        => syscall(SYS_futex, word, FUTEX_WAIT_BITSET, expected, deadline, null, unchecked((int)FUTEX_BITSET_MATCH_ANY));

    // Waking never blocks, so it skips the GC transition.
    [SuppressGCTransition]
    [LibraryImport(Lib, EntryPoint = "syscall")]
    private static partial long syscall_nogc(long number, void* a1, long a2, long a3);

    /// <summary>FUTEX_WAKE (shared): wakes up to <paramref name="count"/> sleepers on <paramref name="word"/>.</summary>
    public static int FutexWake(int* word, int count) => (int)syscall_nogc(SYS_futex, word, FUTEX_WAKE, count);

    public static int gettid() => (int)syscall(SYS_gettid, null, 0, 0, null, null, 0);
}
