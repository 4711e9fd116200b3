using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>Turns the library's pinned timeout semantics into the millisecond counts the BCL's waits take.</summary>
internal static class Waits
{
    /// <summary>Milliseconds left before <paramref name="deadline"/>: −1 for forever, 0 once it has passed.</summary>
    public static int Milliseconds(Deadline deadline)
    {
        if (deadline.IsInfinite)
        {
            return Timeout.Infinite;
        }

        double left = Math.Ceiling(deadline.Remaining.TotalMilliseconds);
        return left <= 0 ? 0 : left >= int.MaxValue ? int.MaxValue - 1 : (int)left;
    }

    /// <summary>Milliseconds for <paramref name="timeout"/> under the pinned semantics (null or infinite: forever).</summary>
    public static int Milliseconds(TimeSpan? timeout, string parameterName = "timeout") => Milliseconds(Deadline.After(timeout, parameterName));
}
