namespace Multiprocessing.Dummy;

/// <summary>The exceptions a timed-out get or put throws, in one place so they match the process queues' exactly.</summary>
internal static class QueueErrors
{
    /// <summary>A timed <c>Get</c> found nothing.</summary>
    public static Exception Empty() => new TimeoutException("The queue stayed empty for the whole timeout.");

    /// <summary>A timed <c>Put</c> found no room.</summary>
    public static Exception Full() => new TimeoutException("The queue stayed full for the whole timeout.");
}
