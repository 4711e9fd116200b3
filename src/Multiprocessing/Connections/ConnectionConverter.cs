using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Connections;

/// <summary>
/// A <see cref="Connection"/> crosses as its OS handle, which travels beside the message (to a child at start, or over
/// a Unix-socket connection); the receiver gets its own descriptor for the same channel, as with Python's pickled connections.
/// </summary>
internal sealed class ConnectionConverter : ObjectConverter<Connection>
{
    /// <remarks>
    /// A copy of a connection's descriptor in another process keeps the channel open: a child that held the parent's
    /// end by accident would never see end of stream. So only the lambdas that read a connection carry it.
    /// </remarks>
    internal override string? ReasonToLeaveOutWhenUnread(ObjectWriter writer, object value)
        => "was left out: the closure holding it is shared with a lambda in this message that does not read it (send the connection separately)";

    public override void Write(ObjectWriter writer, Connection value)
    {
        if (value.Closed)
        {
            throw new CrossingException(typeof(Connection), "cannot cross a process boundary: it is closed");
        }

        if (value.BufferedByteCount > 0)
        {
            // Those bytes were taken off the socket by this process; the other process could never read them.
            throw new CrossingException(typeof(Connection), $"cannot cross a process boundary yet: it holds {value.BufferedByteCount} bytes of messages already read from its socket; receive them first");
        }

        writer.WriteVarUInt((uint)writer.AddHandle(value.TransportHandle, typeof(Connection)));
        writer.WriteBoolean(value.Readable);
        writer.WriteBoolean(value.Writable);
    }

    public override Connection Read(ref ObjectReader reader)
    {
        int index = (int)reader.ReadVarUInt();
        bool readable = reader.ReadBoolean();
        bool writable = reader.ReadBoolean();
        int fd = reader.TakeHandle(index); // last: once taken, nothing below can fail and leak it

        // The socket is shared with the sender's copy: shutting a direction here would cut it there too.
        return new Connection(SocketPairs.Adopt(fd), readable, writable, shutUnusedDirection: false);
    }
}
