namespace Multiprocessing.Dummy;

/// <summary>The exceptions a timed-out get or put throws: the process queues' own, so one catch serves both.</summary>
internal static class QueueErrors
{
    /// <summary>A timed <c>Get</c> found nothing.</summary>
    public static QueueEmptyException Empty() => new();

    /// <summary>A timed <c>Put</c> found no room.</summary>
    public static QueueFullException Full() => new();
}
