using System.Runtime.CompilerServices;

namespace Multiprocessing.Platform;

/// <summary>
/// The futex algorithms of the counting primitives: a value word and, after it, a count of sleepers, so a release or a
/// set makes a kernel call only when someone sleeps. Before sleeping, a waiter spins briefly: a partner in another
/// process often answers within a microsecond.
/// </summary>
internal static unsafe class FutexCounter
{
    /// <summary>Decrements a positive count; false if it is zero.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryTake(int* count)
    {
        int value = Volatile.Read(ref *count);
        while (value > 0)
        {
            int seen = Interlocked.CompareExchange(ref *count, value - 1, value);
            if (seen == value)
            {
                return true;
            }

            value = seen;
        }

        return false;
    }

    /// <summary>Decrements the count once it is positive, or gives up at <paramref name="deadline"/> (false).</summary>
    public static bool Take(int* count, Deadline deadline, WaitCancellation? cancellation)
    {
        if (TryTake(count))
        {
            return true;
        }

        for (int i = 0; i < SpinPause.WaitBudget && !deadline.HasPassed; i++)
        {
            SpinPause.Once();
            if (TryTake(count))
            {
                return true;
            }
        }

        int* sleepers = count + 1;
        Interlocked.Increment(ref *sleepers); // a full fence: a releaser that missed it sees our sleep's count check fail
        try
        {
            while (true)
            {
                if (TryTake(count))
                {
                    return true;
                }

                if (!WaitCancellation.Sleep(count, 0, deadline, cancellation))
                {
                    return TryTake(count);
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref *sleepers);
        }
    }

    /// <summary>Adds <paramref name="n"/> unless that would pass <paramref name="bound"/> (false); wakes as many sleepers.</summary>
    public static bool Add(int* count, int n, int bound)
    {
        int value = Volatile.Read(ref *count);
        while (true)
        {
            if (value > bound - n)
            {
                return false;
            }

            int seen = Interlocked.CompareExchange(ref *count, value + n, value);
            if (seen == value)
            {
                break;
            }

            value = seen;
        }

        if (Volatile.Read(ref count[1]) > 0)
        {
            Futex.Wake(count, n);
        }

        return true;
    }

    /// <summary>Waits until the flag word is non-zero or <paramref name="deadline"/> passes; returns the flag.</summary>
    public static bool WaitForFlag(int* flag, Deadline deadline, WaitCancellation? cancellation)
    {
        if (Volatile.Read(ref *flag) != 0)
        {
            return true;
        }

        for (int i = 0; i < SpinPause.WaitBudget && !deadline.HasPassed; i++)
        {
            SpinPause.Once();
            if (Volatile.Read(ref *flag) != 0)
            {
                return true;
            }
        }

        int* sleepers = flag + 1;
        Interlocked.Increment(ref *sleepers);
        try
        {
            while (Volatile.Read(ref *flag) == 0)
            {
                if (!WaitCancellation.Sleep(flag, 0, deadline, cancellation))
                {
                    return Volatile.Read(ref *flag) != 0;
                }
            }

            return true;
        }
        finally
        {
            Interlocked.Decrement(ref *sleepers);
        }
    }

    /// <summary>Sets the flag word and wakes every sleeper.</summary>
    public static void SetFlag(int* flag)
    {
        Interlocked.Exchange(ref *flag, 1);
        if (Volatile.Read(ref flag[1]) > 0)
        {
            Futex.WakeAll(flag);
        }
    }
}
