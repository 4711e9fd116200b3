using System.Threading.Channels;

namespace Multiprocessing.Dummy;

/// <summary>A <see cref="Queue{T}"/> that counts unfinished tasks (Python's <c>JoinableQueue</c>): each item put is one more, <see cref="TaskDone"/> marks one finished, <see cref="Join()"/> waits for none to remain.</summary>
/// <typeparam name="T">The item type.</typeparam>
public class JoinableQueue<T> : Queue<T>, IJoinableQueue<T>
{
    private readonly object _gate = new();
    private long _unfinished;
    private TaskCompletionSource _allDone = Done();
    private CountingWriter? _writer;

    /// <summary>Creates a joinable queue; <paramref name="maxSize"/> bounds the number of items (0: unbounded).</summary>
    public JoinableQueue(int maxSize = 0)
        : base(maxSize)
    {
    }

    /// <summary>The number of items put and not yet marked done.</summary>
    public long UnfinishedTasks => Interlocked.Read(ref _unfinished);

    /// <summary>A <see cref="ChannelWriter{T}"/> into the queue whose writes count as tasks.</summary>
    private protected override ChannelWriter<T> WriterCore => _writer ??= new CountingWriter(this, base.WriterCore);

    /// <summary>Marks one item as done; <see cref="InvalidOperationException"/> if called more times than items were put.</summary>
    public void TaskDone()
    {
        lock (_gate)
        {
            if (_unfinished == 0)
            {
                throw new InvalidOperationException("TaskDone() called more times than there were items put.");
            }

            if (--_unfinished == 0)
            {
                _allDone.TrySetResult();
            }
        }
    }

    /// <summary>Waits until every item put has been marked done.</summary>
    public void Join() => AllDone().Wait();

    /// <summary>Waits up to <paramref name="timeout"/> until every item put has been marked done; false if some remain.</summary>
    public bool Join(TimeSpan timeout) => AllDone().Wait(Waits.Milliseconds(timeout), CancellationToken.None);

    /// <summary>Completes when every item put has been marked done.</summary>
    public Task JoinAsync(CancellationToken cancellationToken = default) => AllDone().WaitAsync(cancellationToken);

    /// <inheritdoc/>
    private protected override void Counted(int delta)
    {
        lock (_gate)
        {
            if (_unfinished == 0)
            {
                _allDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            _unfinished += delta;
            if (_unfinished == 0)
            {
                _allDone.TrySetResult();
            }
        }
    }

    private static TaskCompletionSource Done()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        done.SetResult();
        return done;
    }

    private Task AllDone()
    {
        lock (_gate)
        {
            return _allDone.Task;
        }
    }

    private sealed class CountingWriter(JoinableQueue<T> queue, ChannelWriter<T> inner) : ChannelWriter<T>
    {
        public override bool TryComplete(Exception? error = null) => inner.TryComplete(error);

        public override bool TryWrite(T item)
        {
            queue.Counted(1);
            if (inner.TryWrite(item))
            {
                return true;
            }

            queue.Counted(-1);
            return false;
        }

        public override ValueTask<bool> WaitToWriteAsync(CancellationToken cancellationToken = default) => inner.WaitToWriteAsync(cancellationToken);
    }
}
