using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>CPU affinity of the calling thread: a manager's serving thread steps off the CPU its client runs on.</summary>
internal static unsafe partial class LibC
{
    /// <summary>Bytes in the CPU masks used here (1,024 CPUs).</summary>
    public const int CpuMaskBytes = 128;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sched_getaffinity(int pid, nint size, byte* mask);

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int sched_setaffinity(int pid, nint size, byte* mask);
}
