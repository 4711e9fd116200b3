using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Queues;

/// <summary>
/// A queue crosses as the handle of its shared memory (to a child at start, or over a local connection); the receiver
/// maps the same queue. Like Python's, it cannot go into plain bytes, so a queue cannot be put into a queue.
/// </summary>
internal sealed class QueueConverter<TQueue, T> : ObjectConverter<TQueue>
    where TQueue : class
{
    private const string Refusal = "cannot go through a queue or into plain bytes: a queue is handed to a child process when it starts (as an argument or a captured variable) or sent over a Connection, as in Python, where queues \"should only be shared between processes through inheritance\"";

    public static ObjectConverter? Provide(Type type)
    {
        if (!type.IsGenericType)
        {
            return null;
        }

        Type definition = type.GetGenericTypeDefinition();
        return definition == typeof(Queue<>) || definition == typeof(JoinableQueue<>) || definition == typeof(SimpleQueue<>)
            ? (ObjectConverter)Activator.CreateInstance(typeof(QueueConverter<,>).MakeGenericType(type, type.GetGenericArguments()[0]))!
            : null;
    }

    public override void Write(ObjectWriter writer, TQueue value)
    {
        if (!writer.CanCarryHandles)
        {
            throw new CrossingException(typeof(TQueue), Refusal);
        }

        MessageRing ring = value switch
        {
            SimpleQueue<T> simple => simple.Inner.Ring,
            Queue<T> queue => queue.Ring,
            _ => throw new CrossingException(typeof(TQueue), "is not a queue"),
        };

        if (ring.IsClosed)
        {
            throw new CrossingException(typeof(TQueue), "cannot cross a process boundary: it has been closed");
        }

        writer.WriteRegion(ring.Region, typeof(TQueue));
    }

    public override TQueue Read(ref ObjectReader reader)
    {
        MessageRing ring = MessageRing.Attach(reader.ReadRegion(), "Multiprocessing.Queue");
        object queue = typeof(TQueue).GetGenericTypeDefinition() == typeof(JoinableQueue<>) ? new JoinableQueue<T>(ring)
            : typeof(TQueue).GetGenericTypeDefinition() == typeof(SimpleQueue<>) ? new SimpleQueue<T>(new Queue<T>(ring))
            : new Queue<T>(ring);
        reader.Register(queue);
        return (TQueue)queue;
    }
}
