using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>
/// A <see cref="Queue{T}"/> that counts unfinished tasks (Python's <c>multiprocessing.JoinableQueue</c>): each item put
/// is one more; a consumer calls <see cref="TaskDone"/> when it has finished with an item, and <see cref="Join()"/>
/// waits until every item put has been done, in whichever processes.
/// </summary>
/// <remarks>An item whose producer was killed before it was fully put counts as done.</remarks>
/// <typeparam name="T">The item type; every process using the queue must use the same one.</typeparam>
public class JoinableQueue<T> : Queue<T>, IJoinableQueue<T>
{
    /// <summary>Creates a joinable queue; <paramref name="maxSize"/> bounds the number of items (0: unbounded).</summary>
    public JoinableQueue(int maxSize = 0)
        : base(maxSize)
    {
    }

    internal JoinableQueue(MessageRing ring)
        : base(ring)
    {
    }

    /// <summary>The number of items put and not yet marked done (approximate while others work).</summary>
    public long UnfinishedTasks
    {
        get
        {
            Ring.Enter();
            try
            {
                return Ring.UnfinishedTasks;
            }
            finally
            {
                Ring.Exit();
            }
        }
    }

    private protected override bool CountsTasks => true;

    /// <summary>Marks one item as done; <see cref="InvalidOperationException"/> if called more times than items were put.</summary>
    public void TaskDone()
    {
        Ring.Enter();
        try
        {
            Ring.TaskDone();
        }
        finally
        {
            Ring.Exit();
        }
    }

    /// <summary>Waits until every item put has been marked done.</summary>
    public void Join() => _ = JoinCore(Deadline.Infinite, default);

    /// <summary>Waits up to <paramref name="timeout"/> until every item put has been marked done; false if some remain.</summary>
    public bool Join(TimeSpan timeout) => JoinCore(Deadline.After(timeout), default);

    /// <summary>Waits, on another thread, until every item put has been marked done.</summary>
    public Task JoinAsync(CancellationToken cancellationToken = default)
        => cancellationToken.IsCancellationRequested ? Task.FromCanceled(cancellationToken)
            : Blocking.Run(() => JoinCore(Deadline.Infinite, cancellationToken), cancellationToken);

    private bool JoinCore(Deadline deadline, CancellationToken cancellationToken)
    {
        Ring.Enter();
        try
        {
            return Ring.Join(deadline, cancellationToken);
        }
        finally
        {
            Ring.Exit();
        }
    }
}
