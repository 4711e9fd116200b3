namespace Multiprocessing;

/// <summary>A barrier was broken (Python's <c>threading.BrokenBarrierError</c>): aborted, reset, timed out, its action failed, or a party died.</summary>
public sealed class BrokenBarrierException : Exception
{
    /// <summary>A barrier was broken.</summary>
    public BrokenBarrierException()
        : base("The barrier is broken.")
    {
    }

    /// <summary>A barrier was broken, for the reason given.</summary>
    public BrokenBarrierException(string message)
        : base(message)
    {
    }

    /// <summary>A barrier was broken, because of <paramref name="innerException"/>.</summary>
    public BrokenBarrierException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
