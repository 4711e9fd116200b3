namespace Multiprocessing.Dummy;

/// <summary>A semaphore whose count may not be released past its starting value (Python's <c>threading.BoundedSemaphore</c>).</summary>
public sealed class BoundedSemaphore : Semaphore
{
    /// <summary>Creates a bounded semaphore whose count starts at, and may not exceed, <paramref name="initial"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="initial"/> is negative.</exception>
    public BoundedSemaphore(int initial = 1)
        : base(initial, Math.Max(initial, 1))
    {
    }
}
