using System.Collections.Concurrent;
using System.Threading.Channels;

namespace Multiprocessing.Dummy;

/// <summary>
/// A pool of worker threads with the API of <see cref="Multiprocessing.Pool"/> (Python's <c>ThreadPool</c>): work
/// runs on the pool's threads, and functions, arguments and results pass by reference.
/// </summary>
/// <remarks>
/// A thread cannot be stopped: when a task's <c>timeout</c> passes or its cancellation token fires while it runs, its
/// result fails with <see cref="TimeoutException"/> or <see cref="OperationCanceledException"/> at once, but the
/// function runs on to its end, holding its worker (the process pool kills and replaces the worker instead).
/// <see cref="Terminate"/> likewise fails pending work but lets running tasks finish. A function's exception reaches
/// the caller as a <see cref="RemoteException"/>, as from the process pool, with the original as its description.
/// </remarks>
public sealed class Pool : IDisposable
{
    private readonly BlockingCollection<Job> _queue = [];
    private readonly List<Thread> _workers = [];
    private readonly object _gate = new();
    private State _state;

    /// <summary>Starts the pool's worker threads.</summary>
    /// <param name="processes">How many worker threads; null means <see cref="Environment.ProcessorCount"/>.</param>
    /// <param name="initializer">Runs once on each worker thread when it starts.</param>
    /// <param name="maxTasksPerChild">How many tasks a worker thread runs before a fresh one replaces it; null: no limit.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="processes"/> or <paramref name="maxTasksPerChild"/> is less than 1.</exception>
    public Pool(int? processes = null, Action? initializer = null, int? maxTasksPerChild = null)
    {
        int count = processes ?? Environment.ProcessorCount;
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1, nameof(processes));
        if (maxTasksPerChild is { } max)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(max, 1, nameof(maxTasksPerChild));
        }

        Processes = count;
        MaxTasksPerChild = maxTasksPerChild;
        Initializer = initializer;
        lock (_gate)
        {
            for (int i = 0; i < count; i++)
            {
                StartWorker();
            }
        }
    }

    private enum State
    {
        Running,
        Closed,
        Terminated,
    }

    /// <summary>The number of worker threads.</summary>
    public int Processes { get; }

    /// <summary>How many tasks a worker thread runs before it is replaced; null: no limit.</summary>
    public int? MaxTasksPerChild { get; }

    /// <summary>This process's id once per worker thread (threads share the process).</summary>
    public IReadOnlyList<int> WorkerPids => Enumerable.Repeat(Environment.ProcessId, Processes).ToArray();

    private Action? Initializer { get; }

    /// <summary>Runs <paramref name="func"/> on a worker thread and returns its result (Python's <c>apply</c>).</summary>
    /// <param name="func">The function.</param>
    /// <param name="timeout">If the call runs longer, <see cref="TimeoutException"/> is thrown (the function runs on).</param>
    /// <param name="cancellationToken">Cancels the call: pending, it is dropped; running, the caller stops waiting.</param>
    /// <exception cref="RemoteException">The function threw.</exception>
    public TResult Apply<TResult>(Func<TResult> func, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
        => ApplyAsync(func, null, null, timeout, cancellationToken).Get();

    /// <summary>Runs <paramref name="action"/> on a worker thread and waits for it to finish.</summary>
    /// <inheritdoc cref="Apply{TResult}(Func{TResult}, TimeSpan?, CancellationToken)"/>
    public void Apply(Action action, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        _ = Apply<object?>(
            () =>
            {
                action();
                return null;
            },
            timeout,
            cancellationToken);
    }

    /// <summary>Submits <paramref name="func"/> to run on a worker thread and returns at once (Python's <c>apply_async</c>).</summary>
    /// <param name="func">The function.</param>
    /// <param name="callback">Runs with the result, before the result becomes ready.</param>
    /// <param name="errorCallback">Runs with the exception if the call fails.</param>
    /// <param name="timeout">If the call runs longer, the result fails with <see cref="TimeoutException"/> (the function runs on).</param>
    /// <param name="cancellationToken">Cancels the call: pending, it is dropped; running, its result fails at once.</param>
    public AsyncResult<TResult> ApplyAsync<TResult>(
        Func<TResult> func,
        Action<TResult>? callback = null,
        Action<Exception>? errorCallback = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        var result = new AsyncResult<TResult>(callback, errorCallback);
        Submit(
            () =>
            {
                try
                {
                    result.SetResult(func());
                }
                catch (Exception ex)
                {
                    result.SetException(RemoteException.FromException(ex));
                }
            },
            result.SetException,
            timeout,
            cancellationToken);
        return result;
    }

    /// <summary>
    /// Applies <paramref name="func"/> to every item on the worker threads and returns the results in order (Python's
    /// <c>map</c>). Every item runs even if some fail; then the failure of the earliest failed chunk is thrown.
    /// </summary>
    /// <param name="func">The function.</param>
    /// <param name="items">The inputs, read in full before anything runs.</param>
    /// <param name="chunkSize">Items per task; null: about items / (4 × processes), as Python (1 when a timeout is given).</param>
    /// <param name="timeout">Per task: a chunk may run for this long per item it holds, else the map fails with <see cref="TimeoutException"/>.</param>
    /// <param name="progress">Told the number of items completed so far, after each chunk.</param>
    /// <param name="cancellationToken">Cancels the whole map: pending chunks are dropped, the result fails at once.</param>
    public IReadOnlyList<TResult> Map<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
        => MapAsync(func, items, chunkSize, timeout, progress, cancellationToken).Get();

    /// <summary>As <see cref="Map{T, TResult}"/>, returning at once with a result to wait for or await (Python's <c>map_async</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public AsyncResult<IReadOnlyList<TResult>> MapAsync<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        Pooling.MapChunking.ValidateChunkSize(chunkSize);
        T[] all = items.ToArray();
        var result = new AsyncResult<IReadOnlyList<TResult>>();
        ThrowIfNotRunning();
        if (all.Length == 0)
        {
            result.SetResult([]);
            return result;
        }

        int size = chunkSize ?? (timeout is null ? Pooling.MapChunking.DefaultChunkSize(all.Length, Processes) : 1);
        var gather = new Pooling.MapGather<TResult>(all.Length, size, progress, result.SetResult, result.SetException);
        for (int c = 0; c < gather.Chunks; c++)
        {
            int chunk = c;
            Submit(
                () =>
                {
                    try
                    {
                        int start = gather.StartOf(chunk);
                        Span<TResult> slot = gather.SlotOf(chunk);
                        for (int i = 0; i < slot.Length; i++)
                        {
                            slot[i] = func(all[start + i]);
                        }
                    }
                    catch (Exception ex)
                    {
                        gather.Failed(chunk, RemoteException.FromException(ex));
                        return;
                    }

                    gather.Succeeded(chunk);
                },
                error => gather.Failed(chunk, error),
                timeout is { } t && t != Timeout.InfiniteTimeSpan ? t * gather.CountOf(chunk) : timeout,
                cancellationToken);
        }

        return result;
    }

    /// <summary>
    /// Applies <paramref name="func"/> to the items lazily and yields the results in order (Python's <c>imap</c>), with a
    /// bounded number of tasks in flight; a failed task's exception is thrown when iteration reaches it.
    /// </summary>
    /// <param name="func">The function.</param>
    /// <param name="items">The inputs, read lazily.</param>
    /// <param name="chunkSize">Items per task; null: 1, as Python's <c>imap</c>.</param>
    /// <param name="timeout">Per task, as in <see cref="Map{T, TResult}"/>.</param>
    /// <param name="progress">Told the number of items completed so far, after each chunk.</param>
    /// <param name="cancellationToken">Cancels the iteration and the tasks not yet started.</param>
    public IEnumerable<TResult> Imap<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        Pooling.MapChunking.ValidateChunkSize(chunkSize);
        ThrowIfNotRunning();
        return Iterate(func, items, chunkSize ?? 1, timeout, progress, ordered: true, cancellationToken);
    }

    /// <summary>As <see cref="Imap{T, TResult}"/>, yielding each result as soon as its task completes, in any order (Python's <c>imap_unordered</c>).</summary>
    /// <inheritdoc cref="Imap{T, TResult}"/>
    public IEnumerable<TResult> ImapUnordered<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        ArgumentNullException.ThrowIfNull(items);
        Pooling.MapChunking.ValidateChunkSize(chunkSize);
        ThrowIfNotRunning();
        return Iterate(func, items, chunkSize ?? 1, timeout, progress, ordered: false, cancellationToken);
    }

    /// <summary>Applies a two-argument function to each pair (Python's <c>starmap</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public IReadOnlyList<TResult> Starmap<T1, T2, TResult>(
        Func<T1, T2, TResult> func,
        IEnumerable<(T1, T2)> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
        => StarmapAsync(func, items, chunkSize, timeout, progress, cancellationToken).Get();

    /// <summary>Applies a three-argument function to each triple (Python's <c>starmap</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public IReadOnlyList<TResult> Starmap<T1, T2, T3, TResult>(
        Func<T1, T2, T3, TResult> func,
        IEnumerable<(T1, T2, T3)> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
        => StarmapAsync(func, items, chunkSize, timeout, progress, cancellationToken).Get();

    /// <summary>As <see cref="Starmap{T1, T2, TResult}"/>, returning at once (Python's <c>starmap_async</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public AsyncResult<IReadOnlyList<TResult>> StarmapAsync<T1, T2, TResult>(
        Func<T1, T2, TResult> func,
        IEnumerable<(T1, T2)> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        return MapAsync<(T1, T2), TResult>(pair => func(pair.Item1, pair.Item2), items, chunkSize, timeout, progress, cancellationToken);
    }

    /// <summary>As <see cref="Starmap{T1, T2, T3, TResult}"/>, returning at once (Python's <c>starmap_async</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public AsyncResult<IReadOnlyList<TResult>> StarmapAsync<T1, T2, T3, TResult>(
        Func<T1, T2, T3, TResult> func,
        IEnumerable<(T1, T2, T3)> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        return MapAsync<(T1, T2, T3), TResult>(triple => func(triple.Item1, triple.Item2, triple.Item3), items, chunkSize, timeout, progress, cancellationToken);
    }

    /// <summary>Accepts no more work; the workers finish what was submitted and then exit (Python's <c>close</c>).</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_state == State.Running)
            {
                _state = State.Closed;
            }

            _queue.CompleteAdding();
        }
    }

    /// <summary>
    /// Fails pending work with <see cref="OperationCanceledException"/> and lets the workers exit once their running
    /// tasks end (threads cannot be stopped); returns without waiting.
    /// </summary>
    public void Terminate()
    {
        lock (_gate)
        {
            if (_state == State.Terminated)
            {
                return;
            }

            _state = State.Terminated;
            _queue.CompleteAdding();
        }

        while (_queue.TryTake(out Job? job))
        {
            job.Fail(TerminatedException());
        }
    }

    /// <summary>Waits for the worker threads to exit (Python's <c>join</c>); call <see cref="Close"/> or <see cref="Terminate"/> first.</summary>
    /// <exception cref="InvalidOperationException">The pool is still running.</exception>
    public void Join()
    {
        lock (_gate)
        {
            if (_state == State.Running)
            {
                throw new InvalidOperationException("Join() waits for the workers to exit: call Close() or Terminate() first.");
            }
        }

        while (true)
        {
            Thread[] workers;
            lock (_gate)
            {
                _workers.RemoveAll(worker => !worker.IsAlive);
                workers = [.. _workers];
            }

            if (workers.Length == 0)
            {
                return;
            }

            foreach (Thread worker in workers)
            {
                worker.Join();
            }
        }
    }

    /// <summary>Terminates the pool and waits for its worker threads to exit (their running tasks finish first).</summary>
    public void Dispose()
    {
        Terminate();
        Join();
        _queue.Dispose();
    }

    private static OperationCanceledException TerminatedException() => new("The pool was terminated before this task completed.");


    private void ThrowIfNotRunning()
    {
        State state = _state;
        if (state != State.Running)
        {
            throw new InvalidOperationException($"The pool is {(state == State.Closed ? "closed" : "terminated")}: it accepts no more work.");
        }
    }

    /// <summary>Queues <paramref name="run"/>; <paramref name="fail"/> is told of a timeout, a cancellation or a termination (the result ignores a second completion).</summary>
    private void Submit(Action run, Action<Exception> fail, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        int milliseconds = Waits.Milliseconds(timeout);
        if (cancellationToken.IsCancellationRequested)
        {
            fail(new OperationCanceledException(cancellationToken));
            return;
        }

        var job = new Job(run, fail, milliseconds, cancellationToken);
        lock (_gate)
        {
            ThrowIfNotRunning();
            _queue.Add(job, CancellationToken.None);
        }
    }

    private void StartWorker()
    {
        var worker = new Thread(Work) { IsBackground = true, Name = "PoolWorker" };
        _workers.Add(worker);
        worker.Start();
    }

    private void Work()
    {
        Initializer?.Invoke();
        int done = 0;
        foreach (Job job in _queue.GetConsumingEnumerable())
        {
            job.Run();
            if (MaxTasksPerChild is { } max && ++done >= max)
            {
                lock (_gate)
                {
                    if (_state == State.Running)
                    {
                        StartWorker();
                    }
                }

                return;
            }
        }
    }

    private IEnumerable<TResult> Iterate<T, TResult>(
        Func<T, TResult> func, IEnumerable<T> items, int chunkSize, TimeSpan? timeout, IProgress<int>? progress, bool ordered, CancellationToken cancellationToken)
    {
        Channel<(int Index, TResult[]? Results, Exception? Error)> done = Channel.CreateUnbounded<(int, TResult[]?, Exception?)>();
        var early = new Dictionary<int, (TResult[]? Results, Exception? Error)>();
        using IEnumerator<T> source = items.GetEnumerator();
        int window = Processes * 2;
        int submitted = 0;
        int received = 0;
        int next = 0;
        int completed = 0;
        bool more = true;
        while (true)
        {
            while (more && submitted - received < window)
            {
                var chunk = new List<T>(chunkSize);
                while (chunk.Count < chunkSize && source.MoveNext())
                {
                    chunk.Add(source.Current);
                }

                if (chunk.Count == 0)
                {
                    more = false;
                    break;
                }

                int index = submitted++;
                int reported = 0;
                void Report(TResult[]? results, Exception? error)
                {
                    if (Interlocked.Exchange(ref reported, 1) == 0)
                    {
                        done.Writer.TryWrite((index, results, error));
                    }
                }

                Submit(
                    () =>
                    {
                        try
                        {
                            var results = new TResult[chunk.Count];
                            for (int i = 0; i < results.Length; i++)
                            {
                                results[i] = func(chunk[i]);
                            }

                            progress?.Report(Interlocked.Add(ref completed, results.Length));
                            Report(results, null);
                        }
                        catch (Exception ex)
                        {
                            Report(null, RemoteException.FromException(ex));
                        }
                    },
                    error => Report(null, error),
                    timeout is { } t && t != Timeout.InfiniteTimeSpan ? t * chunk.Count : timeout,
                    cancellationToken);
            }

            if (received == submitted)
            {
                yield break;
            }

            (int Index, TResult[]? Results, Exception? Error) entry = done.Reader.ReadAsync(cancellationToken).AsTask().GetAwaiter().GetResult();
            received++;
            if (!ordered)
            {
                foreach (TResult value in entry.Results ?? throw entry.Error!)
                {
                    yield return value;
                }

                continue;
            }

            early[entry.Index] = (entry.Results, entry.Error);
            while (early.Remove(next, out (TResult[]? Results, Exception? Error) ready))
            {
                next++;
                foreach (TResult value in ready.Results ?? throw ready.Error!)
                {
                    yield return value;
                }
            }
        }
    }

    /// <summary>One queued task: its body, and how to fail its result on a timeout, a cancellation (pending or running) or a termination.</summary>
    private sealed class Job
    {
        private readonly Action _run;
        private readonly Action<Exception> _fail;
        private readonly int _timeoutMilliseconds;
        private readonly CancellationToken _cancellationToken;
        private readonly CancellationTokenRegistration _cancellation;

        public Job(Action run, Action<Exception> fail, int timeoutMilliseconds, CancellationToken cancellationToken)
        {
            _run = run;
            _fail = fail;
            _timeoutMilliseconds = timeoutMilliseconds;
            _cancellationToken = cancellationToken;
            _cancellation = cancellationToken.CanBeCanceled
                ? cancellationToken.Register(() => fail(new OperationCanceledException(cancellationToken)))
                : default;
        }

        public void Fail(Exception error)
        {
            _cancellation.Dispose();
            _fail(error);
        }

        public void Run()
        {
            try
            {
                if (_cancellationToken.IsCancellationRequested)
                {
                    return; // dropped: the registration has failed its result
                }

                using Timer? timer = _timeoutMilliseconds == Timeout.Infinite ? null
                    : new Timer(_ => _fail(new TimeoutException($"The task ran past its timeout of {_timeoutMilliseconds} ms (its thread could not be stopped and runs on).")), null, _timeoutMilliseconds, Timeout.Infinite);
                _run();
            }
            finally
            {
                _cancellation.Dispose();
            }
        }
    }
}
