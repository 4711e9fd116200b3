using Multiprocessing.Pooling;

namespace Multiprocessing;

/// <summary>
/// A pool of worker processes that run submitted work (Python's <c>multiprocessing.Pool</c>), built never to hang: a
/// worker that dies fails only the task it was running and is replaced; a task can have a timeout and be cancelled,
/// which stops its worker; <see cref="Terminate"/> returns at once however much work is pending.
/// </summary>
/// <remarks>
/// Each worker is a daemonic child process started once and reused; it talks to the pool over its own
/// <see cref="Connection"/>, and a thread of the pool feeds it a few tasks ahead. Functions, arguments and results go
/// through the serializer, so lambdas may capture what a <see cref="Process"/> target may capture. Disposing the pool
/// terminates it, as Python's <c>with Pool() as p:</c> does.
/// <para>
/// Short tasks travel in batches and a worker may hold a few finished results back to send them together (never past
/// 1 ms, and never before a task with a timeout or a token starts). If the worker dies meanwhile, only the task it
/// was running fails; the finished tasks whose results died with it run again on another worker, so a task whose
/// worker is killed from outside may run twice.
/// </para>
/// </remarks>
public sealed class Pool : IDisposable
{
    private readonly object _gate = new();
    private readonly LinkedList<PoolJob> _pending = new();
    private readonly WorkerSlot[] _slots;
    private PoolState _state;
    private RemoteException? _initializerError;

    /// <summary>Starts the pool's worker processes.</summary>
    /// <param name="processes">How many workers; null means <see cref="Environment.ProcessorCount"/>.</param>
    /// <param name="initializer">Runs once in each worker when it starts (it must be able to cross to a child).</param>
    /// <param name="maxTasksPerChild">How many tasks a worker runs before it is replaced by a fresh one; null: no limit.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="processes"/> or <paramref name="maxTasksPerChild"/> is less than 1.</exception>
    /// <exception cref="System.Runtime.Serialization.SerializationException">The initializer cannot cross to a child.</exception>
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
        _slots = new WorkerSlot[count];
        try
        {
            for (int i = 0; i < count; i++)
            {
                _slots[i] = new WorkerSlot(this, i + 1);
                _slots[i].StartWorker(); // here, so an initializer that cannot cross fails the constructor
            }
        }
        catch
        {
            // The workers already started must not outlive the failed constructor: stopped, reaped, their connections closed.
            foreach (WorkerSlot? slot in _slots)
            {
                slot?.Abandon();
            }

            throw;
        }

        foreach (WorkerSlot slot in _slots)
        {
            slot.StartThread();
        }
    }

    /// <summary>The number of worker processes.</summary>
    public int Processes { get; }

    /// <summary>How many tasks a worker runs before it is replaced; null: no limit.</summary>
    public int? MaxTasksPerChild { get; }

    internal Action? Initializer { get; }

    /// <summary>The pids of the current worker processes (they change as workers are replaced).</summary>
    public IReadOnlyList<int> WorkerPids
    {
        get
        {
            lock (_gate)
            {
                return _slots.Select(s => s.WorkerPid).Where(p => p is not null).Select(p => p!.Value).ToArray();
            }
        }
    }

    // ---------------------------------------------------------------- Apply

    /// <summary>Runs <paramref name="func"/> in a worker and returns its result (Python's <c>apply</c>).</summary>
    /// <param name="func">The function; a lambda may capture values, which are copied to the worker.</param>
    /// <param name="timeout">If the call runs longer, its worker is stopped (and replaced) and <see cref="TimeoutException"/> is thrown.</param>
    /// <param name="cancellationToken">Cancels the call: pending, it is dropped; running, its worker is stopped and replaced.</param>
    /// <exception cref="RemoteException">The function threw in the worker.</exception>
    /// <exception cref="ProcessException">The worker died while running it.</exception>
    public TResult Apply<TResult>(Func<TResult> func, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        var result = new AsyncResult<TResult>();
        Submit(new CallItem<TResult>(func, WorkItem.IdIfStateless(func)), value => result.SetResult((TResult)value!), result.SetException, timeout, cancellationToken, DirectReceipt.Caller);
        return Wait(result, cancellationToken);
    }

    /// <summary>Runs <paramref name="action"/> in a worker and waits for it to finish.</summary>
    /// <inheritdoc cref="Apply{TResult}(Func{TResult}, TimeSpan?, CancellationToken)"/>
    public void Apply(Action action, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(action);
        var result = new AsyncResult<object?>();
        Submit(new ActionItem(action, WorkItem.IdIfStateless(action)), result.SetResult, result.SetException, timeout, cancellationToken);
        Wait(result, cancellationToken);
    }

    /// <summary>Submits <paramref name="func"/> to run in a worker and returns at once (Python's <c>apply_async</c>).</summary>
    /// <param name="func">The function; a lambda may capture values, which are copied to the worker.</param>
    /// <param name="callback">Runs in this process with the result when it arrives, before the result becomes ready.</param>
    /// <param name="errorCallback">Runs in this process with the exception if the call fails.</param>
    /// <param name="timeout">If the call runs longer, its worker is stopped (and replaced) and the result fails with <see cref="TimeoutException"/>.</param>
    /// <param name="cancellationToken">Cancels the call: pending, it is dropped; running, its worker is stopped and replaced.</param>
    public AsyncResult<TResult> ApplyAsync<TResult>(
        Func<TResult> func,
        Action<TResult>? callback = null,
        Action<Exception>? errorCallback = null,
        TimeSpan? timeout = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(func);
        var result = new AsyncResult<TResult>(callback, errorCallback);

        // Without callbacks, a timeout or a token, the result is usually wanted by a Get() that follows at once: if the
        // task goes straight to an idle worker, that Get() may receive it itself (as Apply does), one wake-up fewer.
        bool lend = callback is null && errorCallback is null && timeout is null && !cancellationToken.CanBeCanceled;
        PoolJob job = Submit(
            new CallItem<TResult>(func, WorkItem.IdIfStateless(func)), value => result.SetResult((TResult)value!), result.SetException, timeout, cancellationToken,
            lend ? DirectReceipt.Waiter : DirectReceipt.SlotThread);
        if (job.LentBy is not null)
        {
            result.Lend(job);
        }

        return result;
    }

    // ---------------------------------------------------------------- Map

    /// <summary>
    /// Applies <paramref name="func"/> to every item in the workers and returns the results in order (Python's <c>map</c>).
    /// Every item runs even if some fail; then the failure of the earliest failed chunk is thrown.
    /// </summary>
    /// <param name="func">The function; a lambda may capture values, which are copied to the workers.</param>
    /// <param name="items">The inputs, read in full before anything runs (an exception it throws reaches the caller).</param>
    /// <param name="chunkSize">Items per task; null: about items / (4 × processes), as Python (1 when a timeout is given, so it applies per item).</param>
    /// <param name="timeout">Per task: a chunk may run for this long per item it holds, else its worker is stopped and the chunk fails with <see cref="TimeoutException"/>.</param>
    /// <param name="progress">Told the number of items completed so far, after each chunk.</param>
    /// <param name="cancellationToken">Cancels the whole map: pending chunks are dropped, running ones stopped.</param>
    public IReadOnlyList<TResult> Map<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
        => Wait(MapAsync(func, items, chunkSize, timeout, progress, cancellationToken), cancellationToken);

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
        MapChunking.ValidateChunkSize(chunkSize);
        T[] all = items.ToArray();
        var result = new AsyncResult<IReadOnlyList<TResult>>();
        ThrowIfNotRunning();
        if (all.Length == 0)
        {
            result.SetResult([]);
            return result;
        }

        int size = chunkSize ?? (timeout is null ? MapChunking.DefaultChunkSize(all.Length, Processes) : 1);
        var gather = new MapGather<TResult>(all.Length, size, progress, result.SetResult, result.SetException);
        new MapFeeder<T, TResult>(this, func, all, gather, timeout, cancellationToken).Start();
        return result;
    }

    /// <summary>
    /// Applies <paramref name="func"/> to the items lazily and yields the results in order (Python's <c>imap</c>): the
    /// input is read as results are consumed, with a bounded number of tasks in flight, so an endless input works.
    /// A failed task's exception is thrown when iteration reaches it.
    /// </summary>
    /// <param name="func">The function; a lambda may capture values, which are copied to the workers.</param>
    /// <param name="items">The inputs, read lazily.</param>
    /// <param name="chunkSize">Items per task; null: 1, as Python's <c>imap</c>.</param>
    /// <param name="timeout">Per task, as in <see cref="Map{T, TResult}"/>.</param>
    /// <param name="progress">Told the number of items completed so far, after each chunk.</param>
    /// <param name="cancellationToken">Cancels the iteration and the tasks in flight.</param>
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
        MapChunking.ValidateChunkSize(chunkSize);
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
        MapChunking.ValidateChunkSize(chunkSize);
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
        => Wait(StarmapAsync(func, items, chunkSize, timeout, progress, cancellationToken), cancellationToken);

    /// <summary>Applies a three-argument function to each triple (Python's <c>starmap</c>).</summary>
    /// <inheritdoc cref="Map{T, TResult}"/>
    public IReadOnlyList<TResult> Starmap<T1, T2, T3, TResult>(
        Func<T1, T2, T3, TResult> func,
        IEnumerable<(T1, T2, T3)> items,
        int? chunkSize = null,
        TimeSpan? timeout = null,
        IProgress<int>? progress = null,
        CancellationToken cancellationToken = default)
        => Wait(StarmapAsync(func, items, chunkSize, timeout, progress, cancellationToken), cancellationToken);

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

    // ---------------------------------------------------------------- lifetime

    /// <summary>Accepts no more work; the workers finish what was submitted and then exit (Python's <c>close</c>).</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_state == PoolState.Running)
            {
                _state = PoolState.Closed;
            }

            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>
    /// Stops the workers now (Python's <c>terminate</c>) and returns without waiting: pending and running work fails
    /// with <see cref="OperationCanceledException"/> (Python's results would never become ready).
    /// </summary>
    public void Terminate()
    {
        PoolJob[] dropped;
        lock (_gate)
        {
            if (_state == PoolState.Terminated)
            {
                return;
            }

            _state = PoolState.Terminated;
            dropped = [.. _pending];
            _pending.Clear();
            Monitor.PulseAll(_gate);
        }

        foreach (WorkerSlot slot in _slots)
        {
            slot.KillWorker();
        }

        foreach (PoolJob job in dropped)
        {
            job.TryFail(TerminatedException());
        }
    }

    /// <summary>Waits for the workers to exit (Python's <c>join</c>); call <see cref="Close"/> or <see cref="Terminate"/> first.</summary>
    /// <exception cref="InvalidOperationException">The pool is still running.</exception>
    public void Join()
    {
        lock (_gate)
        {
            if (_state == PoolState.Running)
            {
                throw new InvalidOperationException("Join() waits for the workers to exit: call Close() or Terminate() first.");
            }
        }

        foreach (WorkerSlot slot in _slots)
        {
            slot.JoinThread();
        }
    }

    /// <summary>Terminates the pool (as Python's <c>with</c> does) and waits for its workers to be gone.</summary>
    public void Dispose()
    {
        Terminate();
        Join();
    }

    // ---------------------------------------------------------------- internals

    internal object Gate => _gate;

    internal PoolState State => _state;

    internal LinkedList<PoolJob> Pending => _pending;

    internal RemoteException? InitializerError => _initializerError;


    internal static OperationCanceledException TerminatedException() => new("The pool was terminated before this task completed.");

    private void ThrowIfNotRunning()
    {
        PoolState state = _state;
        if (state != PoolState.Running)
        {
            throw new InvalidOperationException($"The pool is {(state == PoolState.Closed ? "closed" : "terminated")}: it accepts no more work.");
        }
    }

    /// <summary>
    /// Queues a work item; exactly one of the two continuations runs, once. If an idle worker takes it at once,
    /// <paramref name="receipt"/> says who receives its result: with <see cref="DirectReceipt.Caller"/> (the caller
    /// blocks until the result is in) the caller itself, here; with <see cref="DirectReceipt.Waiter"/> whoever waits
    /// for it first (see <see cref="WorkerSlot.ReceiveLent"/>).
    /// </summary>
    internal PoolJob Submit(WorkItem item, Action<object?> succeed, Action<Exception> fail, TimeSpan? timeout, CancellationToken cancellationToken, DirectReceipt receipt = DirectReceipt.SlotThread)
    {
        bool callerWaits = receipt == DirectReceipt.Caller;
        PoolJob job = NewJob(item, succeed, fail, timeout, cancellationToken);
        WorkerSlot? direct = null;
        lock (_gate)
        {
            ThrowIfNotRunning();
            if (_initializerError is not null)
            {
                throw InitializerFailure(_initializerError);
            }

            if (_pending.Count == 0 && FindIdle(job, receipt) is { } idle)
            {
                direct = idle;
                if (receipt == DirectReceipt.SlotThread)
                {
                    Monitor.PulseAll(_gate); // its thread waits with the others: wake them all so it goes to receive
                }
            }
            else
            {
                _pending.AddLast(job.Node);
                Monitor.Pulse(_gate);
            }
        }

        direct?.SendDirect(job);

        if (cancellationToken.CanBeCanceled)
        {
            job.Owner = this;
            job.Registration = cancellationToken.Register(static state => ((PoolJob)state!).Owner!.Cancel((PoolJob)state!), job);
        }

        if (callerWaits && direct is not null)
        {
            direct.ReceiveBorrowed(job);
        }

        return job;
    }

    /// <summary>A job for <see cref="SubmitAll"/>; exactly one of the two continuations will run, once.</summary>
    internal static PoolJob NewJob(WorkItem item, Action<object?> succeed, Action<Exception> fail, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        CheckJob(timeout, cancellationToken);
        return new PoolJob(item, succeed, fail, timeout == Timeout.InfiniteTimeSpan ? null : timeout, cancellationToken);
    }

    /// <summary>A job that is part <paramref name="index"/> of <paramref name="owner"/>'s work.</summary>
    internal static PoolJob NewJob(WorkItem item, IJobContinuation owner, int index, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        CheckJob(timeout, cancellationToken);
        return new PoolJob(item, owner, index, timeout == Timeout.InfiniteTimeSpan ? null : timeout, cancellationToken);
    }

    private static void CheckJob(TimeSpan? timeout, CancellationToken cancellationToken)
    {
        if (timeout is { } t && t != Timeout.InfiniteTimeSpan && t <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), t, "A task's timeout must be positive, or null / Timeout.InfiniteTimeSpan for none.");
        }

        cancellationToken.ThrowIfCancellationRequested(); // not even handed to a worker
    }

    /// <summary>
    /// Queues many jobs at once (a map's chunks), waking the slots' threads once. With <paramref name="accepted"/>
    /// they belong to work accepted earlier (a map fed in waves), which a closed pool still runs.
    /// </summary>
    internal void SubmitAll(List<PoolJob> jobs, bool accepted)
    {
        lock (_gate)
        {
            if (accepted && _state == PoolState.Terminated)
            {
                throw TerminatedException();
            }

            if (!accepted)
            {
                ThrowIfNotRunning();
            }

            if (_initializerError is not null)
            {
                throw InitializerFailure(_initializerError);
            }

            foreach (PoolJob job in jobs)
            {
                _pending.AddLast(job.Node);
            }

            Monitor.PulseAll(_gate);
        }

        foreach (PoolJob job in jobs)
        {
            if (job.CancellationToken.CanBeCanceled)
            {
                job.Owner = this;
                job.Registration = job.CancellationToken.Register(static state => ((PoolJob)state!).Owner!.Cancel((PoolJob)state!), job);
            }
        }
    }

    /// <summary>Under the gate: the first idle slot that takes <paramref name="job"/> straight away, if any.</summary>
    private WorkerSlot? FindIdle(PoolJob job, DirectReceipt receipt)
    {
        foreach (WorkerSlot slot in _slots)
        {
            if (slot.TryAssignDirect(job, receipt))
            {
                return slot;
            }
        }

        return null;
    }

    /// <summary>
    /// A cancelled job: dropped if still pending; if its worker is running it, that worker is stopped (and replaced);
    /// if its worker holds it behind another task, the worker is stopped when it gets to it.
    /// </summary>
    private void Cancel(PoolJob job)
    {
        WorkerSlot? holder;
        bool pending;
        lock (_gate)
        {
            job.Cancelled = true;
            pending = job.Node.List == _pending;
            if (pending)
            {
                _pending.Remove(job.Node);
            }

            holder = job.Slot is { } slot && slot.IsRunning(job) ? slot : null;
        }

        if (pending)
        {
            job.TryFail(new OperationCanceledException(job.CancellationToken));
        }
        else
        {
            holder?.KillWorkerFor(job);
        }
    }

    /// <summary>Drops a job nobody waits for any more, if it has not been handed to a worker yet.</summary>
    internal void Discard(PoolJob job)
    {
        lock (_gate)
        {
            if (job.Node.List == _pending)
            {
                _pending.Remove(job.Node);
            }
        }
    }

    /// <summary>Called by a slot whose worker reported that the initializer threw: every task, now and later, fails.</summary>
    internal void InitializerFailed(RemoteException error)
    {
        PoolJob[] dropped;
        lock (_gate)
        {
            _initializerError ??= error;
            dropped = [.. _pending];
            _pending.Clear();
        }

        foreach (PoolJob job in dropped)
        {
            job.TryFail(InitializerFailure(error));
        }
    }

    internal static ProcessException InitializerFailure(RemoteException error)
        => new($"The pool's initializer threw in a worker, so the pool cannot run tasks: {error.RemoteType}: {error.Message}", error);

    private static T Wait<T>(AsyncResult<T> result, CancellationToken cancellationToken)
    {
        if (cancellationToken.CanBeCanceled)
        {
            try
            {
                result.AsTask().Wait(cancellationToken);
            }
            catch (AggregateException)
            {
                // the result holds the exception; Get() throws it unwrapped
            }
        }

        return result.Get();
    }

    private IEnumerable<TResult> Iterate<T, TResult>(
        Func<T, TResult> func,
        IEnumerable<T> items,
        int chunkSize,
        TimeSpan? timeout,
        IProgress<int>? progress,
        bool ordered,
        CancellationToken cancellationToken)
    {
        int window = Processes * 2 + 1;
        long functionId = WorkItem.NewFunctionId();
        var inFlight = new System.Collections.Generic.Queue<(PoolJob Job, TaskCompletionSource<TResult[]> Source)>();
        var done = new System.Collections.Concurrent.BlockingCollection<(TResult[]? Results, Exception? Error)>();
        int completed = 0;
        using IEnumerator<T> source = items.GetEnumerator();
        bool more = true;
        try
        {
            while (true)
            {
                while (more && inFlight.Count < window)
                {
                    var chunk = new List<T>(chunkSize);
                    while (chunk.Count < chunkSize && (more = source.MoveNext()))
                    {
                        chunk.Add(source.Current);
                    }

                    if (chunk.Count == 0)
                    {
                        break;
                    }

                    var completion = new TaskCompletionSource<TResult[]>(TaskCreationOptions.RunContinuationsAsynchronously);
                    PoolJob job = Submit(
                        new MapChunk<T, TResult>(func, functionId, [.. chunk]),
                        value =>
                        {
                            var results = (TResult[])value!;
                            completion.TrySetResult(results);
                            if (!ordered)
                            {
                                done.Add((results, null));
                            }
                        },
                        error =>
                        {
                            completion.TrySetException(error);
                            if (!ordered)
                            {
                                done.Add((null, error));
                            }
                        },
                        timeout is { } t && t != Timeout.InfiniteTimeSpan ? t * chunk.Count : timeout,
                        cancellationToken);
                    inFlight.Enqueue((job, completion));
                }

                if (inFlight.Count == 0)
                {
                    yield break;
                }

                TResult[] results;
                if (ordered)
                {
                    (_, TaskCompletionSource<TResult[]> head) = inFlight.Peek();
                    try
                    {
                        head.Task.Wait(cancellationToken);
                    }
                    catch (AggregateException)
                    {
                        // thrown below, unwrapped
                    }

                    inFlight.Dequeue();
                    results = head.Task.GetAwaiter().GetResult();
                }
                else
                {
                    (TResult[]? arrived, Exception? error) = done.Take(cancellationToken);
                    _ = inFlight.Dequeue(); // which one does not matter: the window only counts them
                    if (error is not null)
                    {
                        System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(error);
                    }

                    results = arrived!;
                }

                progress?.Report(completed += results.Length);
                foreach (TResult value in results)
                {
                    yield return value;
                }
            }
        }
        finally
        {
            // Left early (break, exception): tasks not yet handed to a worker are dropped; running ones finish unseen.
            foreach ((PoolJob job, _) in inFlight)
            {
                Discard(job);
            }

            // `done` is left undisposed: tasks still running add to it when they finish, after this iterator is gone.
        }
    }
}

internal enum PoolState
{
    Running,
    Closed,
    Terminated,
}
