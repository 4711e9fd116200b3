using System.Runtime.CompilerServices;

namespace Multiprocessing.Platform;

/// <summary>
/// A mutex in a 32-bit shared word that names its holder's process: 0 is free, otherwise the holder's pid, with
/// <see cref="Waiters"/> set once someone may sleep on it. An uncontended enter is one compare-and-swap and an
/// uncontended exit one exchange: no kernel call. A holder's death is noticed by the waiters' process watch, which
/// swaps the pid for <see cref="OwnerDied"/>; whoever takes the word next learns it was abandoned.
/// </summary>
/// <remarks>The word after it (<c>word[1]</c>) holds the adaptive spin estimate shared by every user of the mutex.</remarks>
internal static unsafe class FutexMutex
{
    /// <summary>Set while someone may be sleeping on the word: the exit must wake one.</summary>
    public const int Waiters = unchecked((int)0x80000000);

    /// <summary>The holder's process ended without releasing (above any pid: Linux pids stay below 2^22).</summary>
    public const int OwnerDied = 0x3FFFFFFF;

    /// <summary>The most rounds a contended enter spins before sleeping.</summary>
    private const int MaxSpins = 100;

    /// <summary>How an enter ended.</summary>
    public enum Outcome
    {
        /// <summary>The caller holds the mutex.</summary>
        Acquired,

        /// <summary>The caller holds the mutex, which a dead process held before.</summary>
        Abandoned,

        /// <summary>The deadline passed first; the caller does not hold it.</summary>
        TimedOut,
    }

    /// <summary>Takes a free mutex with one compare-and-swap; false when it is not free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool TryEnterFast(int* word) => Interlocked.CompareExchange(ref *word, PeerWatch.Self, 0) == 0;

    /// <summary>The process holding the mutex: 0 when free, <see cref="OwnerDied"/> when its holder died.</summary>
    public static int Owner(int* word) => Volatile.Read(ref *word) & ~Waiters;

    /// <summary>
    /// Takes the mutex, spinning briefly and then sleeping until <paramref name="deadline"/>; while asleep, the holder's
    /// process is watched through <paramref name="listener"/> (which must call <see cref="MarkOwnerDied"/>).
    /// </summary>
    public static Outcome Enter(int* word, Deadline deadline, IPeerDeathListener listener, WaitCancellation? cancellation)
    {
        int self = PeerWatch.Self;
        int* spinEstimate = word + 1;
        int limit = Math.Min(MaxSpins, (Volatile.Read(ref *spinEstimate) * 2) + 10);
        for (int spins = 0; ; spins++)
        {
            int value = Volatile.Read(ref *word);
            if (value == 0)
            {
                if (Interlocked.CompareExchange(ref *word, self, 0) == 0)
                {
                    *spinEstimate += (spins - *spinEstimate) / 8; // a racy estimate is fine: it only tunes spinning
                    return Outcome.Acquired;
                }

                continue;
            }

            if ((value & ~Waiters) == OwnerDied)
            {
                if (Interlocked.CompareExchange(ref *word, self | (value & Waiters), value) == value)
                {
                    return Outcome.Abandoned;
                }

                continue;
            }

            if (spins >= limit || deadline.HasPassed)
            {
                *spinEstimate += (limit - *spinEstimate) / 8;
                break;
            }

            Thread.SpinWait(16);
        }

        while (true)
        {
            int value = Volatile.Read(ref *word);
            if (value == 0)
            {
                // Others may still sleep behind us: take it with the waiters bit so our exit wakes the next.
                if (Interlocked.CompareExchange(ref *word, self | Waiters, 0) == 0)
                {
                    return Outcome.Acquired;
                }

                continue;
            }

            int owner = value & ~Waiters;
            if (owner == OwnerDied)
            {
                if (Interlocked.CompareExchange(ref *word, self | Waiters, value) == value)
                {
                    return Outcome.Abandoned;
                }

                continue;
            }

            if (deadline.HasPassed)
            {
                return Outcome.TimedOut; // before raising the waiters bit: a failed try must not cost the holder a wake
            }

            if ((value & Waiters) == 0 && Interlocked.CompareExchange(ref *word, value | Waiters, value) != value)
            {
                continue;
            }

            PeerWatch.Watch(owner, listener);
            if (!WaitCancellation.Sleep(word, value | Waiters, deadline, cancellation))
            {
                return Outcome.TimedOut;
            }
        }
    }

    /// <summary>Frees the mutex, waking one sleeper if any; false if it was not held.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Exit(int* word)
    {
        int old = Interlocked.Exchange(ref *word, 0);
        if ((old & Waiters) != 0)
        {
            Futex.Wake(word, 1);
        }

        return old != 0;
    }

    /// <summary>If <paramref name="pid"/> still holds the mutex, marks it abandoned and wakes the sleepers to take it.</summary>
    public static void MarkOwnerDied(int* word, int pid)
    {
        while (true)
        {
            int value = Volatile.Read(ref *word);
            if ((value & ~Waiters) != pid)
            {
                return;
            }

            if (Interlocked.CompareExchange(ref *word, OwnerDied | (value & Waiters), value) == value)
            {
                // All of them: one woken sleeper may be timing out at this very moment and never take it.
                Futex.WakeAll(word);
                return;
            }
        }
    }
}
