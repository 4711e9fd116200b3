using System.Threading.Channels;

namespace Multiprocessing.Dummy;

/// <summary>Python's <c>multiprocessing.dummy.Pipe</c>: a pair of connected in-memory <see cref="Connection"/> objects.</summary>
public static class Pipe
{
    /// <summary>Creates a pipe.</summary>
    /// <param name="duplex">True: both ends send and receive. False: the first end only receives and the second only sends.</param>
    /// <returns>The two ends; hand one to another thread.</returns>
    public static (Connection First, Connection Second) Create(bool duplex = true)
    {
        Channel<object?> toFirst = NewChannel();
        Channel<object?> toSecond = duplex ? NewChannel() : ClosedChannel();
        return duplex
            ? (new Connection(toFirst, toSecond, readable: true, writable: true), new Connection(toSecond, toFirst, readable: true, writable: true))
            : (new Connection(toFirst, toSecond, readable: true, writable: false), new Connection(toSecond, toFirst, readable: false, writable: true));
    }

    private static Channel<object?> NewChannel()
        => Channel.CreateUnbounded<object?>(new UnboundedChannelOptions { SingleReader = false, SingleWriter = false, AllowSynchronousContinuations = false });

    private static Channel<object?> ClosedChannel()
    {
        Channel<object?> channel = NewChannel();
        channel.Writer.TryComplete();
        return channel;
    }
}
