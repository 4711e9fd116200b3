using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.Arm;
using System.Runtime.Intrinsics.X86;

namespace Multiprocessing.Platform;

/// <summary>
/// One CPU spin-wait hint (x86 <c>pause</c>, about 50 ns on this machine; Arm <c>yield</c>). <see cref="Thread.SpinWait"/>
/// is normalized to much longer steps (about 0.8 µs for 16 here), too coarse to notice a partner's answer in time.
/// </summary>
internal static class SpinPause
{
    /// <summary>How many hints a waiter spends before it sleeps: long enough for a partner in another process that is running to answer (about 20 µs here).</summary>
    public const int WaitBudget = 400;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Once()
    {
        if (X86Base.IsSupported)
        {
            X86Base.Pause();
        }
        else if (ArmBase.IsSupported)
        {
            ArmBase.Yield();
        }
        else
        {
            Thread.SpinWait(1);
        }
    }
}
