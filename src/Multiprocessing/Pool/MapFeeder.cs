namespace Multiprocessing.Pooling;

/// <summary>
/// Feeds a map's chunks to the pool in waves rather than all at once: a bounded number of them exist as queued
/// tasks at any time, and finishing chunks make room for the next. A map of a million items then holds a few
/// thousand tasks, not a million (which would live long enough to make the garbage collector's work expensive).
/// </summary>
internal sealed class MapFeeder<T, TResult> : IJobContinuation
{
    private readonly Pool _pool;
    private readonly Func<T, TResult> _func;
    private readonly long _functionId = WorkItem.NewFunctionId(); // one function for every chunk: each worker receives it once
    private readonly T[] _items;
    private readonly MapGather<TResult> _gather;
    private readonly TimeSpan? _timeout;
    private readonly CancellationToken _cancellationToken;
    private readonly int _window;
    private readonly object _lock = new();
    private int _next;
    private int _outstanding;

    public MapFeeder(Pool pool, Func<T, TResult> func, T[] items, MapGather<TResult> gather, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        _pool = pool;
        _func = func;
        _items = items;
        _gather = gather;
        _timeout = timeout;
        _cancellationToken = cancellationToken;
        _window = Math.Max(pool.Processes * 1024, 1024);
    }

    /// <summary>Queues the first wave; what it throws (a closed pool, a bad timeout, a cancelled token) reaches the caller.</summary>
    public void Start()
    {
        lock (_lock)
        {
            _pool.SubmitAll(NextWave(), accepted: false);
        }
    }

    /// <summary>A chunk finished (either way): when half the window has drained, the next wave goes.</summary>
    private void Finished()
    {
        if (Interlocked.Decrement(ref _outstanding) > _window / 2 || Volatile.Read(ref _next) == _gather.Chunks)
        {
            return; // the common case takes no lock: the slots' threads finish chunks side by side
        }

        lock (_lock)
        {
            if (Volatile.Read(ref _outstanding) > _window / 2 || _next == _gather.Chunks)
            {
                return; // another thread queued the next wave meanwhile
            }

            int from = _next;
            try
            {
                _pool.SubmitAll(NextWave(), accepted: true);
            }
            catch (Exception ex)
            {
                // Terminated, the initializer failed, or the map was cancelled: the chunks not queued yet fail the same way.
                for (int chunk = from; chunk < _gather.Chunks; chunk++)
                {
                    _gather.Failed(chunk, ex);
                }

                _next = _gather.Chunks;
            }
        }
    }

    private List<PoolJob> NextWave()
    {
        int count = Math.Min(_window - Volatile.Read(ref _outstanding), _gather.Chunks - _next);
        var jobs = new List<PoolJob>(count);
        for (int i = 0; i < count; i++)
        {
            int chunk = _next + i;
            T[] slice = _items.AsSpan(_gather.StartOf(chunk), _gather.CountOf(chunk)).ToArray();
            jobs.Add(Pool.NewJob(
                new MapChunk<T, TResult>(_func, _functionId, slice),
                this,
                chunk,
                _timeout is { } t && t != Timeout.InfiniteTimeSpan ? t * slice.Length : _timeout,
                _cancellationToken));
        }

        Volatile.Write(ref _next, _next + count);
        Interlocked.Add(ref _outstanding, count);
        return jobs;
    }

    /// <inheritdoc/>
    public void Succeeded(int index, object? value)
    {
        ((TResult[])value!).CopyTo(_gather.SlotOf(index));
        _gather.Succeeded(index);
        Finished();
    }

    /// <inheritdoc/>
    public void Failed(int index, Exception error)
    {
        _gather.Failed(index, error);
        Finished();
    }
}
