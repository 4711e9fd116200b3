using System.ComponentModel;
using System.Runtime.InteropServices;

namespace Bench.Harness;

/// <summary>CPU affinity of the calling thread (Linux <c>sched_setaffinity</c>), to take the scheduler's placement out of a figure.</summary>
public static partial class Affinity
{
    private const int MaskBytes = 128; // 1,024 CPUs

    /// <summary>The calling thread's current CPU mask, to hand back to <see cref="Restore"/>.</summary>
    public static byte[] Current()
    {
        byte[] mask = new byte[MaskBytes];
        if (sched_getaffinity(0, MaskBytes, mask) < 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "sched_getaffinity failed");
        }

        return mask;
    }

    /// <summary>The lowest CPU the calling thread may run on.</summary>
    public static int LowestCpu()
    {
        byte[] mask = Current();
        for (int cpu = 0; cpu < MaskBytes * 8; cpu++)
        {
            if ((mask[cpu / 8] & (1 << (cpu % 8))) != 0)
            {
                return cpu;
            }
        }

        throw new InvalidOperationException("The thread may run on no CPU.");
    }

    /// <summary>Pins the calling thread to <paramref name="cpu"/>; a negative value does nothing.</summary>
    public static void Pin(int cpu)
    {
        if (cpu < 0)
        {
            return;
        }

        byte[] mask = new byte[MaskBytes];
        mask[cpu / 8] = (byte)(1 << (cpu % 8));
        Restore(mask);
    }

    /// <summary>Gives the calling thread the CPU mask <paramref name="mask"/> (from <see cref="Current"/>).</summary>
    public static void Restore(byte[] mask)
    {
        ArgumentNullException.ThrowIfNull(mask);
        if (sched_setaffinity(0, mask.Length, mask) != 0)
        {
            throw new Win32Exception(Marshal.GetLastPInvokeError(), "sched_setaffinity failed");
        }
    }

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_getaffinity(int pid, nint size, [Out] byte[] mask);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int sched_setaffinity(int pid, nint size, byte[] mask);
}
