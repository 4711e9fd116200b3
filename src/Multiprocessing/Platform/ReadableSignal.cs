using System.ComponentModel;
using System.Runtime.InteropServices;
using Multiprocessing.Platform.Linux;

namespace Multiprocessing.Platform;

/// <summary>
/// An OS handle that becomes readable, for good, once it is set (an eventfd): how something that is not a process —
/// a thread ending, an in-memory connection receiving — shows up among the handles <see cref="Readiness.Wait"/> polls.
/// </summary>
internal static unsafe class ReadableSignal
{
    /// <summary>Makes a signal, already set if <paramref name="set"/>; the caller owns (and disposes) the handle.</summary>
    public static SafeHandle Create(bool set)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw new PlatformNotSupportedException($"Waitable signals are not implemented for {RuntimeInformation.OSDescription} yet; Linux is supported.");
        }

        int fd = LibC.eventfd(set ? 1u : 0u, LibC.EFD_CLOEXEC);
        if (fd < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "eventfd failed");
        }

        return new FileDescriptorHandle(fd);
    }

    /// <summary>Makes <paramref name="signal"/> readable; does nothing if it was already disposed (nobody can wait on it then).</summary>
    public static void Set(SafeHandle signal)
    {
        bool added = false;
        try
        {
            signal.DangerousAddRef(ref added);
            ulong one = 1;
            _ = LibC.write((int)signal.DangerousGetHandle(), (byte*)&one, sizeof(ulong)); // cannot block: the counter is far from full
        }
        catch (ObjectDisposedException)
        {
            // disposed by its owner in the meantime
        }
        finally
        {
            if (added)
            {
                signal.DangerousRelease();
            }
        }
    }
}
