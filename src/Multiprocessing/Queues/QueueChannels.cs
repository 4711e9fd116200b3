using System.Threading.Channels;
using Multiprocessing.Platform;

namespace Multiprocessing.Queues;

/// <summary>A queue seen as a <see cref="ChannelReader{T}"/>: code written for <c>System.Threading.Channels</c> reads across processes.</summary>
internal sealed class QueueChannelReader<T>(Queue<T> queue) : ChannelReader<T>
{
    public override bool CanCount => true;

    public override int Count => queue.Count;

    public override bool TryRead(out T item) => queue.TryGet(out item);

    public override ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        return new ValueTask<bool>(Blocking.Run(() => queue.WaitToRead(cancellationToken), cancellationToken));
    }

    public override ValueTask<T> ReadAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<T>(cancellationToken);
        }

        if (queue.TryGet(out T item))
        {
            return new ValueTask<T>(item);
        }

        return new ValueTask<T>(Blocking.Run(() => queue.GetCore(out T value, Deadline.Infinite, cancellationToken, untilCompleted: true)
            ? value
            : throw new ChannelClosedException(), cancellationToken));
    }
}

/// <summary>A queue seen as a <see cref="ChannelWriter{T}"/>; completing it completes the queue for every process.</summary>
internal sealed class QueueChannelWriter<T>(Queue<T> queue) : ChannelWriter<T>
{
    /// <remarks>An error passed here cannot travel to readers in other processes; they see a plain completion.</remarks>
    public override bool TryComplete(Exception? error = null)
    {
        queue.Ring.Enter();
        try
        {
            return queue.Ring.Complete();
        }
        finally
        {
            queue.Ring.Exit();
        }
    }

    public override bool TryWrite(T item) => !queue.Ring.IsCompleted && queue.TryPut(item);

    public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return ValueTask.FromCanceled<bool>(cancellationToken);
        }

        if (queue.Ring.IsCompleted)
        {
            return new ValueTask<bool>(false);
        }

        if (!queue.IsFull)
        {
            return new ValueTask<bool>(true);
        }

        return new ValueTask<bool>(Blocking.Run(() => queue.WaitToWrite(Deadline.Infinite, cancellationToken) && !queue.Ring.IsCompleted, cancellationToken));
    }

    public override ValueTask WriteAsync(T item, CancellationToken cancellationToken = default)
        => queue.Ring.IsCompleted ? ValueTask.FromException(new ChannelClosedException()) : queue.PutAsync(item, cancellationToken);
}
