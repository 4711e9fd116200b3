using System.Diagnostics;

namespace Multiprocessing.Platform;

/// <summary>
/// Wait and wake on a 32-bit word in shared memory, across processes: the sleeping half of every cross-process
/// primitive. Waiters must re-check their condition after any return: wakeups may be spurious.
/// </summary>
internal static unsafe class Futex
{
    /// <summary>
    /// Sleeps while <c>*word == expected</c>, until woken or <paramref name="deadline"/> passes. Returns false only when the
    /// deadline passed; true on a wakeup, a signal or a changed word (all of which mean "look again").
    /// </summary>
    public static bool Wait(int* word, int expected, Deadline deadline)
    {
        if (!OperatingSystem.IsLinux())
        {
            throw NotSupported();
        }

        if (deadline.IsInfinite)
        {
            return Linux.LibC.FutexWaitUntil(word, expected, null) == 0 || !TimedOut();
        }

        long ticks = deadline.Timestamp;
        if (ticks <= Stopwatch.GetTimestamp())
        {
            return false;
        }

        // Stopwatch reads CLOCK_MONOTONIC on Linux, the clock FUTEX_WAIT_BITSET measures absolute deadlines in.
        var spec = new Linux.LibC.TimeSpec
        {
            Seconds = ticks / Stopwatch.Frequency,
            Nanoseconds = ticks % Stopwatch.Frequency * (1_000_000_000 / Stopwatch.Frequency),
        };
        return Linux.LibC.FutexWaitUntil(word, expected, &spec) == 0 || !TimedOut();
    }

    /// <summary>Wakes up to <paramref name="count"/> waiters on <paramref name="word"/>; returns how many woke.</summary>
    public static int Wake(int* word, int count = 1)
        => OperatingSystem.IsLinux() ? Linux.LibC.FutexWake(word, count) : throw NotSupported();

    /// <summary>Wakes every waiter on <paramref name="word"/>.</summary>
    public static int WakeAll(int* word) => Wake(word, int.MaxValue);

    private static bool TimedOut() => System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Linux.LibC.ETIMEDOUT;

    private static PlatformNotSupportedException NotSupported()
        => new($"Multiprocessing's cross-process synchronization needs futexes; {System.Runtime.InteropServices.RuntimeInformation.OSDescription} has no backend yet (only Linux is supported).");
}

/// <summary>A point on the monotonic clock by which a wait gives up; <see cref="Infinite"/> never passes.</summary>
internal readonly struct Deadline
{
    private Deadline(long timestamp) => Timestamp = timestamp;

    /// <summary>A deadline that never passes.</summary>
    public static Deadline Infinite => new(long.MaxValue);

    /// <summary>The <see cref="Stopwatch"/> timestamp of the deadline.</summary>
    public long Timestamp { get; }

    /// <summary>True for <see cref="Infinite"/>.</summary>
    public bool IsInfinite => Timestamp == long.MaxValue;

    /// <summary>True once the deadline has passed (never for <see cref="Infinite"/>).</summary>
    public bool HasPassed => !IsInfinite && Stopwatch.GetTimestamp() >= Timestamp;

    /// <summary>
    /// The deadline <paramref name="timeout"/> from now: null or <see cref="Timeout.InfiniteTimeSpan"/> is infinite, zero
    /// is now (do not block); any other negative value is <see cref="ArgumentOutOfRangeException"/>.
    /// </summary>
    public static Deadline After(TimeSpan? timeout, string parameterName = "timeout")
    {
        if (timeout is not { } value || value == Timeout.InfiniteTimeSpan)
        {
            return Infinite;
        }

        if (value < TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(parameterName, value, "A timeout must be zero or positive, or Timeout.InfiniteTimeSpan to wait forever.");
        }

        long ticks = (long)Math.Min(value.TotalSeconds * Stopwatch.Frequency, long.MaxValue / 4.0);
        return new Deadline(Stopwatch.GetTimestamp() + ticks);
    }

    /// <summary>What is left until the deadline (zero once passed, <see cref="Timeout.InfiniteTimeSpan"/> if infinite).</summary>
    public TimeSpan Remaining => IsInfinite
        ? Timeout.InfiniteTimeSpan
        : TimeSpan.FromTicks(Math.Max(0, Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), Timestamp).Ticks));
}
