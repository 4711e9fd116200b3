using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>Owns a raw file descriptor (a pidfd, an eventfd, a socket end).</summary>
internal sealed class FileDescriptorHandle : SafeHandle
{
    public FileDescriptorHandle(int fd) : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    /// <summary>The descriptor number.</summary>
    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => LibC.close((int)handle) == 0;
}
