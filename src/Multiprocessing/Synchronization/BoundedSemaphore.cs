using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A semaphore that cannot be released past its starting value (Python's <c>multiprocessing.BoundedSemaphore</c>):
/// over-releasing throws <see cref="SemaphoreFullException"/>.
/// </summary>
public sealed class BoundedSemaphore : Semaphore
{
    /// <summary>Creates a bounded semaphore whose count starts, and stays at most, at <paramref name="initial"/>.</summary>
    public BoundedSemaphore(int initial = 1)
        : base(initial, initial)
    {
    }

    internal BoundedSemaphore(PrimitiveMemory memory)
        : base(memory)
    {
    }
}
