using System.Collections.Concurrent;
using System.Diagnostics;

namespace Multiprocessing.Managers;

/// <summary>
/// Runs a process's task-returning proxy calls to one server on a few worker threads of its own, each with its own line,
/// instead of a pool thread (and a line, and a server thread) per call in flight: on a small machine, sixteen calls in
/// flight each spinning on a line of its own spend the CPU on waiting. One worker serves the queue while calls are
/// quick; when every worker has been inside one call for a while (a call that waits in the server), another worker
/// starts, so a call never waits behind one that may be waiting for it.
/// </summary>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "One per server for the life of the process, like the thread pool.")]
internal sealed class AsyncCalls
{
    private const int MaxWorkers = 64;
    private static readonly long SlowCall = Stopwatch.Frequency / 20; // 50 ms: sooner, a busy machine's stalls would start workers that only add spinning
    private static readonly TimeSpan IdleExit = TimeSpan.FromSeconds(5);
    private static readonly ConcurrentDictionary<string, AsyncCalls> s_callers = new(StringComparer.Ordinal);

    private readonly ServerAddress _server;
    private readonly ConcurrentQueue<WorkItem> _queue = new();
    private readonly SemaphoreSlim _wake = new(0);
    private readonly System.Threading.Lock _gate = new();
    private readonly Timer _watch;
    private Worker[] _snapshot = [];
    private int _sleeping;
    private int _armed;

    private AsyncCalls(ServerAddress server)
    {
        _server = server;
        _watch = new Timer(_ => OnWatch(), null, Timeout.Infinite, Timeout.Infinite);
    }

    /// <summary>The caller for <paramref name="server"/> in this process.</summary>
    public static AsyncCalls For(ServerAddress server) => s_callers.GetOrAdd(server.Key, static (_, s) => new AsyncCalls(s), server);

    /// <summary>Queues a call of <paramref name="method"/> through <paramref name="proxy"/>; the task completes with its result. A cancelled token is honoured until the call is sent.</summary>
    public Task<T> Run<T>(ManagerProxy proxy, System.Reflection.MethodInfo method, object?[]? args, CancellationToken cancellationToken)
    {
        var item = new WorkItem<T>(proxy, method, args, cancellationToken);
        _queue.Enqueue(item);
        if (Volatile.Read(ref _sleeping) > 0)
        {
            _wake.Release();
        }

        StartWorkerIfStuck();
        return item.Task;
    }

    private void StartWorkerIfStuck()
    {
        if (_queue.IsEmpty)
        {
            return;
        }

        if (AllStuck(Volatile.Read(ref _snapshot)))
        {
            lock (_gate)
            {
                if (AllStuck(_snapshot) && _snapshot.Length < MaxWorkers)
                {
                    var worker = new Worker();
                    _snapshot = [.. _snapshot, worker];
                    new Thread(() => Serve(worker)) { IsBackground = true, Name = "Multiprocessing manager async calls" }.Start();
                }
            }
        }

        // While calls wait, look again soon: the worker that has one may be waiting for a call queued behind it.
        if (Interlocked.Exchange(ref _armed, 1) == 0)
        {
            _watch.Change(20, Timeout.Infinite);
        }
    }

    private void OnWatch()
    {
        Volatile.Write(ref _armed, 0);
        StartWorkerIfStuck();
    }

    /// <summary>True when no worker could take a queued call soon: none exists, or each has been inside one call for a while.</summary>
    private static bool AllStuck(Worker[] workers)
    {
        long now = Stopwatch.GetTimestamp();
        foreach (Worker w in workers)
        {
            long since = Volatile.Read(ref w.BusySince);
            if (since == 0 || now - since < SlowCall)
            {
                return false;
            }
        }

        return true;
    }

    private void Serve(Worker worker)
    {
        var batch = new List<WorkItem>(MaxBatch);
        try
        {
            while (true)
            {
                while (batch.Count < MaxBatch && _queue.TryDequeue(out WorkItem? item))
                {
                    if (!item.CancelIfRequested())
                    {
                        batch.Add(item);
                    }
                }

                if (batch.Count > 0)
                {
                    Volatile.Write(ref worker.BusySince, Stopwatch.GetTimestamp());
                    Send(batch);
                    batch.Clear();
                    Volatile.Write(ref worker.BusySince, 0);
                    continue;
                }

                bool found = false;
                for (int i = 0; i < Platform.SpinPause.WaitBudget && !found; i++)
                {
                    Platform.SpinPause.Once();
                    found = !_queue.IsEmpty;
                }

                if (found)
                {
                    continue;
                }

                Interlocked.Increment(ref _sleeping);
                bool woken = !_queue.IsEmpty || _wake.Wait(IdleExit);
                Interlocked.Decrement(ref _sleeping);
                if (!woken && _queue.IsEmpty)
                {
                    lock (_gate)
                    {
                        if (_queue.IsEmpty)
                        {
                            _snapshot = [.. _snapshot.Where(w => w != worker)];
                            return;
                        }
                    }
                }
            }
        }
        finally
        {
            ManagerClient.Forget(_server); // this thread's line goes with it
        }
    }

    /// <summary>
    /// Sends the calls that were waiting as one round trip: the server runs them in order (starting another thread on
    /// the rest when one of them waits), and answers them all at once. Continuations run here, after the whole batch.
    /// </summary>
    private void Send(List<WorkItem> batch)
    {
        var requests = new ManagerRequest[batch.Count];
        for (int i = 0; i < batch.Count; i++)
        {
            requests[i] = batch[i].Begin();
        }

        ManagerResponse[] responses;
        try
        {
            responses = batch.Count == 1
                ? [ManagerClient.Call(_server, requests[0], batch[0].Method)]
                : ManagerClient.CallBatch(_server, requests, [.. batch.Select(b => b.Method)]);
        }
        catch (System.Runtime.Serialization.SerializationException) when (batch.Count > 1)
        {
            // Nothing was sent: one call's arguments cannot cross. Each goes alone, so only that one fails.
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Fail(requests[i], null);
            }

            foreach (WorkItem item in batch)
            {
                Send([item]);
            }

            return;
        }
        catch (Exception ex)
        {
            for (int i = 0; i < batch.Count; i++)
            {
                batch[i].Fail(requests[i], ex);
            }

            return;
        }

        for (int i = 0; i < batch.Count; i++)
        {
            batch[i].Complete(requests[i], responses[i]);
        }
    }

    private const int MaxBatch = 64;

    private sealed class Worker
    {
        /// <summary>When the current call started (a timestamp), 0 between calls.</summary>
        public long BusySince;
    }

    private abstract class WorkItem(ManagerProxy proxy, System.Reflection.MethodInfo method, object?[]? args)
    {
        public System.Reflection.MethodInfo Method => method;

        public ManagerRequest Begin() => proxy.BeginCall(method, args);

        /// <summary>The call did not reach the server; <paramref name="error"/> null: it will be sent again.</summary>
        public void Fail(ManagerRequest request, Exception? error)
        {
            proxy.AbortCall(request);
            if (error is not null)
            {
                SetException(error);
            }
        }

        public void Complete(ManagerRequest request, ManagerResponse response)
        {
            object? result;
            try
            {
                result = proxy.EndCall(method, args, request, response);
            }
            catch (Exception ex)
            {
                SetException(ex);
                return;
            }

            SetResult(result);
        }

        public abstract bool CancelIfRequested();

        protected abstract void SetResult(object? result);

        protected abstract void SetException(Exception error);
    }

    private sealed class WorkItem<T>(ManagerProxy proxy, System.Reflection.MethodInfo method, object?[]? args, CancellationToken cancellationToken)
        : WorkItem(proxy, method, args)
    {
        private readonly TaskCompletionSource<T> _completion = new(); // continuations run here: no wake-up per call; one that blocks makes the worker "stuck", and another starts

        public Task<T> Task => _completion.Task;

        public override bool CancelIfRequested() => cancellationToken.IsCancellationRequested && _completion.TrySetCanceled(cancellationToken);

        protected override void SetResult(object? result)
        {
            try
            {
                _completion.TrySetResult((T)result!);
            }
            catch (InvalidCastException ex)
            {
                _completion.TrySetException(ex);
            }
        }

        protected override void SetException(Exception error) => _completion.TrySetException(error);
    }
}
