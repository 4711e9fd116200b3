using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>Python's <c>multiprocessing.Pipe</c>: a pair of connected <see cref="Connection"/> objects.</summary>
public static class Pipe
{
    /// <summary>Creates a pipe.</summary>
    /// <param name="duplex">True: both ends send and receive. False: the first end only receives and the second only sends.</param>
    /// <returns>The two ends; hand one to a child process as an argument or a captured variable.</returns>
    public static (Connection First, Connection Second) Create(bool duplex = true)
    {
        (System.Net.Sockets.Socket first, System.Net.Sockets.Socket second) = SocketPairs.Create();
        return duplex
            ? (new Connection(first, readable: true, writable: true), new Connection(second, readable: true, writable: true))
            : (new Connection(first, readable: true, writable: false), new Connection(second, readable: false, writable: true));
    }
}
