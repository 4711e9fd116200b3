using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>The libc entry points that listening sockets need (kept apart from the process backend's).</summary>
internal static partial class LibC
{
    public const int SO_REUSEADDR = 2;

    [LibraryImport(Lib, SetLastError = true)]
    public static partial int fchmod(int fd, uint mode);
}
