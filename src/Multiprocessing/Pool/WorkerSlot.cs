using System.Diagnostics;
using System.Runtime.Serialization;

namespace Multiprocessing.Pooling;

/// <summary>One submitted task: its item, its continuations, and where it is.</summary>
internal sealed class PoolJob
{
    private readonly Action<object?>? _succeed;
    private readonly Action<Exception>? _fail;
    private readonly IJobContinuation? _owner;
    private readonly int _index;
    private int _completed;

    /// <summary>A job whose outcome goes to <paramref name="owner"/> as part <paramref name="index"/> of a larger whole (a map's chunk): no delegates to allocate per task.</summary>
    public PoolJob(WorkItem item, IJobContinuation owner, int index, TimeSpan? timeout, CancellationToken cancellationToken)
        : this(item, null, null, timeout, cancellationToken)
    {
        _owner = owner;
        _index = index;
    }

    public PoolJob(WorkItem item, Action<object?>? succeed, Action<Exception>? fail, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        Item = item;
        item.Watched = timeout is not null || cancellationToken.CanBeCanceled;
        _succeed = succeed;
        _fail = fail;
        Timeout = timeout;
        CancellationToken = cancellationToken;
        Node = new LinkedListNode<PoolJob>(this);
    }

    public WorkItem Item { get; }

    public TimeSpan? Timeout { get; }

    public CancellationToken CancellationToken { get; }

    public CancellationTokenRegistration Registration { get; set; }

    public Pool? Owner { get; set; }

    /// <summary>Its place in the pool's pending list while it waits there.</summary>
    public LinkedListNode<PoolJob> Node { get; }

    /// <summary>The slot whose worker holds it (under the pool's gate).</summary>
    public WorkerSlot? Slot { get; set; }

    /// <summary>Set under the pool's gate when its token fired.</summary>
    public bool Cancelled { get; set; }

    /// <summary>The connection a submitter sending it directly must use (captured with the slot under the gate).</summary>
    public Connection? DirectConnection { get; set; }

    /// <summary>The slot that sent it straight to its worker and leaves its result to its first waiter, if so.</summary>
    public WorkerSlot? LentBy { get; set; }

    /// <summary>Set by its slot when it ran past its timeout.</summary>
    public bool TimedOut { get; set; }

    /// <summary>When it started running (a <see cref="Stopwatch"/> timestamp), once it is the oldest task its worker holds.</summary>
    public long StartedAt { get; set; }

    public void TrySucceed(object? value)
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0)
        {
            Registration.Dispose();
            if (_owner is not null)
            {
                Continue(static (job, value) => job._owner!.Succeeded(job._index, value), this, value);
            }
            else
            {
                Continue(static (job, value) => job._succeed!(value), this, value);
            }
        }
    }

    public void TryFail(Exception error)
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0)
        {
            Registration.Dispose();
            if (_owner is not null)
            {
                Continue(static (job, error) => job._owner!.Failed(job._index, error), this, error);
            }
            else
            {
                Continue(static (job, error) => job._fail!(error), this, error);
            }
        }
    }

    /// <summary>Runs a continuation on the slot's thread; whatever it throws must not take the slot down.</summary>
    private static void Continue<T>(Action<PoolJob, T> continuation, PoolJob job, T argument)
    {
        try
        {
            continuation(job, argument);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: a pool task's continuation threw: {ex}");
        }
    }
}

/// <summary>Receives the outcomes of jobs that are parts of one larger piece of work (a map's chunks), by part number.</summary>
internal interface IJobContinuation
{
    /// <summary>Part <paramref name="index"/> returned <paramref name="value"/>.</summary>
    void Succeeded(int index, object? value);

    /// <summary>Part <paramref name="index"/> failed with <paramref name="error"/>.</summary>
    void Failed(int index, Exception error);
}

/// <summary>Who receives the result of a task sent straight to an idle worker.</summary>
internal enum DirectReceipt
{
    /// <summary>The slot's thread, as for any task.</summary>
    SlotThread,

    /// <summary>The submitting caller, which blocks for it at once (<c>Apply</c>).</summary>
    Caller,

    /// <summary>Whoever calls <c>Get</c> on its result, if that comes soon; else the slot's thread (<c>ApplyAsync</c>).</summary>
    Waiter,
}

/// <summary>
/// One worker process and the pool thread that feeds it: the thread hands the worker up to <see cref="Depth"/> tasks
/// ahead, reads their results in order, stops the worker when the oldest task runs past its timeout or is cancelled,
/// and replaces a worker that died (failing only the task it was running, which the worker's progress word names;
/// those it had not started, and those it finished whose results it still held, go back to the queue).
/// </summary>
internal sealed class WorkerSlot(Pool pool, int number) : IMessageSource<WorkItem>
{
    /// <summary>
    /// How many tasks the worker holds ahead of its results: deep while tasks are short (the round trip and the
    /// wake-ups are then the cost, and a deep queue lets both sides handle many messages per wake-up), shallow when
    /// they are long (a task queued behind a long one waits even if another worker is idle).
    /// </summary>
    private int Depth => _averageRunTicks == 0 ? 2 : _averageRunTicks < ShortTaskTicks ? 256 : _averageRunTicks < LongTaskTicks ? 2 : 1;

    private static readonly long ShortTaskTicks = Stopwatch.Frequency / 5_000; // 200 µs
    private static readonly long LongTaskTicks = Stopwatch.Frequency / 200; // 5 ms

    /// <summary>A moving average of how long this slot's tasks ran, in <see cref="Stopwatch"/> ticks (0: none yet).</summary>
    private long _averageRunTicks;

    private static int s_workerNumber;

    private readonly System.Collections.Generic.Queue<PoolJob> _inFlight = new();

    /// <summary>Held while sending to the worker, by this slot's thread or by a submitter sending directly.</summary>
    private readonly object _sendLock = new();

    /// <summary>True while the slot's thread waits for work with a live worker (under the pool's gate).</summary>
    private bool _idle;

    /// <summary>Set (under the pool's gate) by the process watch when the current worker ends.</summary>
    private bool _workerDied;

    /// <summary>The task a deliberate kill of the current worker was for (under the pool's gate).</summary>
    private PoolJob? _killedFor;

    private IDisposable? _deathWatch;

    /// <summary>The current worker's progress word (see <see cref="PoolWorker"/>): which item it runs or last finished.</summary>
    private SharedValue<long>? _progress;

    /// <summary>How many results the current worker's connection has delivered: the head of the in-flight queue is its item number this + 1.</summary>
    private long _resultsReceived;

    /// <summary>True while a synchronous caller receives its own result on this slot's connection; the slot's thread keeps off.</summary>
    private volatile bool _borrowed;

    /// <summary>
    /// A task whose result this slot leaves for its waiter to receive (an <c>ApplyAsync</c> whose <c>Get</c> usually
    /// follows at once), under the pool's gate. The slot counts as borrowed meanwhile; its thread takes the task back as
    /// soon as there is other work, the pool stops, the worker dies, or nobody came for it within <see cref="LendGrace"/>.
    /// </summary>
    private PoolJob? _lentJob;

    /// <summary>When <see cref="_lentJob"/> was lent (a <see cref="Stopwatch"/> timestamp).</summary>
    private long _lentAt;

    /// <summary>How long a lent task waits for its waiter before the slot's thread receives it itself.</summary>
    private static readonly TimeSpan LendGrace = TimeSpan.FromMilliseconds(2);

    /// <summary>Ends a lend nobody came for (the slot's thread may be asleep with nothing else to wake it).</summary>
    private Timer? _lendTimer;

    /// <summary>The function ids the current worker caches (this side of the mirror).</summary>
    private readonly FunctionCache _functions = new();
    private Thread? _thread;
    private Process? _worker;
    private Connection? _connection;
    private int _tasksHanded;

    /// <summary>The current worker's pid (under the pool's gate).</summary>
    public int? WorkerPid { get; private set; }

    public void StartWorker()
    {
        (Connection ours, Connection theirs) = Pipe.Create();
        var progress = new SharedValue<long>(0, locked: false);
        var worker = new Process<Connection, Action?, SharedValue<long>>(
            PoolWorker.Serve, theirs, pool.Initializer, progress, name: $"PoolWorker-{Interlocked.Increment(ref s_workerNumber)}", daemon: true);
        try
        {
            worker.Start();
        }
        catch
        {
            ours.Dispose();
            theirs.Dispose();
            progress.Dispose();
            worker.Dispose();
            throw;
        }

        theirs.Dispose(); // the child has its own copy: ours must see end of stream when the child ends
        lock (pool.Gate)
        {
            _worker = worker;
            _connection = ours;
            _progress = progress;
            _resultsReceived = 0;
            _tasksHanded = 0;
            _workerDied = false;
            _killedFor = null;
        }

        // A worker that dies while idle (killed from outside, out of memory) is replaced at once, not at the next task.
        IDisposable? watch = Platform.ProcessWatch.WhenExited(worker.Pid!.Value, () =>
        {
            lock (pool.Gate)
            {
                if (_worker == worker)
                {
                    _workerDied = true;
                    Monitor.PulseAll(pool.Gate);
                }
            }
        });
        lock (pool.Gate)
        {
            _deathWatch = watch;
        }

        lock (_sendLock) // a submitter may still be finishing a send to the old worker
        {
            _functions.Clear();
            WorkerPid = worker.Pid;
        }
    }

    public void StartThread()
    {
        _thread = new Thread(Run) { IsBackground = true, Name = $"Multiprocessing pool slot {number}" };
        _thread.Start();
    }

    public void JoinThread()
    {
        if (_thread is not null && _thread != Thread.CurrentThread) // disposed from a callback on this very thread
        {
            _thread.Join();
        }
    }

    /// <summary>Whether <paramref name="job"/> is the task the worker is running now (under the pool's gate).</summary>
    public bool IsRunning(PoolJob job) => _inFlight.TryPeek(out PoolJob? head) && head == job;

    /// <summary>
    /// Stops the worker on purpose, to enforce <paramref name="job"/>'s timeout or cancellation. If that task completes
    /// anyway before the worker is gone, the task the worker started next is not at fault and goes back to the queue.
    /// </summary>
    public void KillWorkerFor(PoolJob job)
    {
        lock (pool.Gate)
        {
            _killedFor = job;
        }

        KillWorker();
    }

    /// <summary>For a pool whose constructor failed (the slot has no thread): kills the worker, waits until it is gone, and releases it.</summary>
    public void Abandon()
    {
        KillWorker();
        Process? worker;
        lock (pool.Gate)
        {
            worker = _worker;
        }

        _ = worker?.Join(TimeSpan.FromSeconds(30));
        DisposeWorker();
    }

    /// <summary>Stops the current worker; the slot's thread sees its connection end and handles the rest.</summary>
    public void KillWorker()
    {
        Process? worker;
        lock (pool.Gate)
        {
            worker = _worker;
        }

        try
        {
            worker?.Kill();
        }
        catch (InvalidOperationException)
        {
            // already ended
        }
    }

    private void Run()
    {
        try
        {
            while (Step())
            {
            }
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: pool slot {number} failed: {ex}");
            FailAll(new ProcessException($"The pool's worker slot {number} failed: {ex.Message}"));
        }
        finally
        {
            lock (pool.Gate)
            {
                _lendTimer?.Dispose();
                _lendTimer = null;
            }

            StopWorker();
        }
    }

    /// <summary>One turn: top up the worker, then wait for one result (or for work). False when the slot is done.</summary>
    private bool Step()
    {
        if (!_borrowed && _worker is { IsAlive: false })
        {
            // It died while idle (killed from outside): replace it before handing it anything.
            WorkerEnded();
        }

        List<PoolJob>? toSend = null;
        lock (pool.Gate)
        {
            while (true)
            {
                if (_borrowed)
                {
                    if (_lentJob is not null)
                    {
                        TimeSpan left = LendGrace - Stopwatch.GetElapsedTime(_lentAt);
                        if (left <= TimeSpan.Zero || pool.Pending.First is not null || pool.State != PoolState.Running || _workerDied)
                        {
                            _lentJob = null; // nobody came for it, or there is more to do: receive it as any other
                            _borrowed = false;
                            continue;
                        }

                        Monitor.Wait(pool.Gate, left);
                    }
                    else
                    {
                        Monitor.Wait(pool.Gate); // a caller is receiving on the connection: wait until it hands the slot back
                    }

                    _idle = false;
                    continue;
                }

                if (pool.State == PoolState.Terminated && _inFlight.Count == 0)
                {
                    return false;
                }

                if (_workerDied && _inFlight.Count == 0)
                {
                    break; // replaced below (Recycle), before any task is handed to it
                }

                // No more than this worker's share of what is queued: a depth learnt from short tasks must not hand
                // every one of a few long tasks to the first slot that looks.
                int share = Math.Max(1, (pool.Pending.Count + pool.Processes - 1) / pool.Processes);
                int allowance = Math.Min(Depth - _inFlight.Count, share);
                if (pool.MaxTasksPerChild is { } max)
                {
                    allowance = Math.Min(allowance, max - _tasksHanded);
                }

                while (allowance-- > 0 && pool.Pending.First is { } node && pool.InitializerError is null)
                {
                    pool.Pending.RemoveFirst();
                    PoolJob job = node.Value;
                    job.Slot = this;
                    _inFlight.Enqueue(job);
                    (toSend ??= []).Add(job);
                    _tasksHanded++;
                }

                if (_inFlight.Count > 0)
                {
                    break;
                }

                if (pool.State != PoolState.Running || pool.InitializerError is not null)
                {
                    return false; // closed and drained
                }

                if (pool.MaxTasksPerChild is { } limit && _tasksHanded >= limit)
                {
                    break; // recycle below, then come back for work
                }

                _idle = _worker is not null && _connection is not null && !(pool.MaxTasksPerChild is { } quota && _tasksHanded >= quota);
                Monitor.Wait(pool.Gate);
                _idle = false;
            }
        }

        if (_inFlight.Count == 0)
        {
            Recycle();
            return true;
        }

        if (_worker is null || _connection is null)
        {
            try
            {
                StartReplacement();
            }
            catch (Exception ex)
            {
                // No worker to run them (out of processes or descriptors, say): these tasks fail now, clearly; the
                // next ones try again. Never a hang.
                FailAll(new ProcessException($"The pool could not start a worker process to run this task: {ex.Message}"));
                return true;
            }

            if (_connection is null)
            {
                FailAll(Pool.TerminatedException());
                return true;
            }
        }

        if (toSend is not null && !Send(toSend))
        {
            return true; // the worker died; its tasks were handled
        }

        ReceiveAvailable();
        return true;
    }

    /// <summary>Sends <paramref name="jobs"/> to the worker, one message each, in one write; false when the worker is gone (then handled).</summary>
    private bool Send(List<PoolJob> jobs)
    {
        long now = Stopwatch.GetTimestamp();
        bool sent = false;
        lock (_sendLock)
        {
            if (jobs[0].StartedAt == 0 && _inFlight.Peek() == jobs[0])
            {
                jobs[0].StartedAt = now;
            }

            if (_connection is { } connection)
            {
                _sending = jobs;
                try
                {
                    connection.SendMany(this);
                    sent = true;
                }
                catch (Exception ex) when (ex is IOException or ObjectDisposedException or NullReferenceException)
                {
                    // the worker is gone: handled below
                }
                finally
                {
                    _sending = null;
                }
            }

            if (!sent)
            {
                FailUnsendable();
                WorkerEnded();
                return false;
            }
        }

        FailUnsendable();
        return true;
    }

    /// <summary>The jobs <see cref="Send"/> is sending (under the send lock).</summary>
    private List<PoolJob>? _sending;

    /// <summary>Jobs that could not be serialized during <see cref="Send"/>, failed once the send is over (their continuations may submit more work).</summary>
    private List<(PoolJob Job, Exception Error)>? _unsendable;

    int IMessageSource<WorkItem>.Count => _sending!.Count;

    WorkItem IMessageSource<WorkItem>.Produce(int index)
    {
        WorkItem item = _sending![index].Item;
        return item.FunctionId != 0 && _functions.Contains(item.FunctionId) ? item.WithoutFunction() : item;
    }

    void IMessageSource<WorkItem>.Serialized(int index)
    {
        long id = _sending![index].Item.FunctionId;
        if (id != 0 && !_functions.Contains(id))
        {
            _functions.Add(id, null); // the worker now caches it
        }
    }

    WorkItem IMessageSource<WorkItem>.Failed(int index, SerializationException error)
    {
        // Only this task fails; a placeholder takes its place in the worker's queue, so results still line up with the tasks in flight.
        (_unsendable ??= []).Add((_sending![index], error));
        return SkipItem.Instance;
    }

    private void FailUnsendable()
    {
        if (_unsendable is { Count: > 0 } failed)
        {
            _unsendable = null;
            foreach ((PoolJob job, Exception error) in failed)
            {
                job.TryFail(error);
            }
        }
    }

    /// <summary>Sends one task; false when the worker is gone (the caller decides who handles that). Under the send lock.</summary>
    private bool SendOne(PoolJob job, Connection connection)
    {
        try
        {
            long id = job.Item.FunctionId;
            if (id != 0 && _functions.Contains(id))
            {
                connection.Send(job.Item.WithoutFunction());
            }
            else
            {
                connection.Send(job.Item);
                if (id != 0)
                {
                    _functions.Add(id, null); // the worker now caches it
                }
            }
        }
        catch (SerializationException ex)
        {
            // Nothing was written (messages are serialized before they are sent): only this task fails, now. A
            // placeholder takes its place in the worker's queue, so results still line up with the tasks in flight
            // (and the slot's thread, which may already wait for this result, gets one).
            job.TryFail(ex);
            try
            {
                connection.Send<WorkItem>(SkipItem.Instance);
            }
            catch (Exception sendFailure) when (sendFailure is IOException or ObjectDisposedException or NullReferenceException)
            {
                return false;
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or NullReferenceException)
        {
            return false;
        }

        return true;
    }

    /// <summary>
    /// Under the pool's gate: hands <paramref name="job"/> straight to this slot's worker if the slot is idle, so the
    /// submitting thread sends it itself and the slot's thread only has to receive the result (one wake-up fewer).
    /// On true the caller holds the send lock and must call <see cref="SendDirect"/>.
    /// </summary>
    public bool TryAssignDirect(PoolJob job, DirectReceipt receipt)
    {
        if (!_idle || _workerDied || _connection is null || _worker is null || !Monitor.TryEnter(_sendLock))
        {
            return false; // never wait for the send lock under the gate: its holder may be waiting for the gate
        }

        _idle = false;
        _borrowed = receipt != DirectReceipt.SlotThread;
        if (receipt == DirectReceipt.Waiter)
        {
            job.LentBy = this;
            _lentJob = job;
            _lentAt = Stopwatch.GetTimestamp();
            (_lendTimer ??= new Timer(static state => ((WorkerSlot)state!).LendExpired(), this, Timeout.Infinite, Timeout.Infinite))
                .Change(LendGrace, Timeout.InfiniteTimeSpan);
        }

        job.DirectConnection = _connection; // the worker it was assigned to, even if a replacement comes before the send
        job.Slot = this;
        job.StartedAt = Stopwatch.GetTimestamp();
        _inFlight.Enqueue(job);
        _tasksHanded++;
        return true;
    }

    /// <summary>Sends a job assigned by <see cref="TryAssignDirect"/> and releases the send lock. A dead worker is left to the slot's thread, which sees its end of stream.</summary>
    public void SendDirect(PoolJob job)
    {
        try
        {
            _ = SendOne(job, job.DirectConnection!);
            job.DirectConnection = null;
        }
        finally
        {
            Monitor.Exit(_sendLock);
        }
    }

    /// <summary>
    /// The fast path of a synchronous call on a borrowed slot: the caller, already blocked, receives its own result, so
    /// neither the slot's thread nor a task continuation has to wake. Anything unusual (no answer within a second, the
    /// worker gone, a timeout or cancellation to enforce) hands the slot back to its thread, which handles it as always.
    /// </summary>
    public void ReceiveBorrowed(PoolJob job, TimeSpan? within = null)
    {
        try
        {
            TimeSpan window = TimeSpan.FromSeconds(1);
            if (job.Timeout is { } timeout && timeout < window)
            {
                window = timeout;
            }

            if (within is { } limit && limit < window)
            {
                window = limit;
            }

            Connection? connection = _connection;
            if (connection is not null && !job.CancellationToken.IsCancellationRequested && connection.SpinThenPoll(PoolWorker.SpinBeforeSleep, window))
            {
                WorkResult result = connection.Recv<WorkResult>();
                if (result.Kind != WorkResultKind.InitializerFailed)
                {
                    Complete(result);
                }
                else
                {
                    pool.InitializerFailed(result.Error!);
                    job.TryFail(Pool.InitializerFailure(result.Error!));
                }
            }
        }
        catch (SerializationException ex)
        {
            // The result was read but could not be understood here: that task fails; the stream is still in step.
            Complete(new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex)));
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            // left to the slot's thread, which sees the same end of stream or failure
        }
        finally
        {
            lock (pool.Gate)
            {
                _borrowed = false;
                if (WouldIdle())
                {
                    _idle = true; // its thread still sleeps, and would only go back to sleep: the next call may use the slot at once
                }
                else
                {
                    Monitor.PulseAll(pool.Gate); // there is something for its thread to do (or to notice)
                }
            }
        }
    }

    /// <summary>
    /// Under the pool's gate: a waiter on <paramref name="job"/>, lent to it by <see cref="TryAssignDirect"/>, receives
    /// its result itself (see <see cref="ReceiveBorrowed"/>) unless the slot's thread took it back already.
    /// </summary>
    public void ReceiveLent(PoolJob job, TimeSpan? within)
    {
        lock (pool.Gate)
        {
            if (_lentJob != job)
            {
                return;
            }

            _lentJob = null; // an ordinary borrow now, by this waiter
        }

        ReceiveBorrowed(job, within);
    }

    /// <summary>Nobody will block for <paramref name="job"/>'s result (it is awaited or polled): the slot's thread receives it.</summary>
    public void Unlend(PoolJob job)
    {
        lock (pool.Gate)
        {
            if (_lentJob == job)
            {
                _lentJob = null;
                _borrowed = false;
                Monitor.PulseAll(pool.Gate);
            }
        }
    }

    /// <summary>The lend timer fired: a task lent for longer than <see cref="LendGrace"/> goes back to the slot's thread.</summary>
    private void LendExpired()
    {
        lock (pool.Gate)
        {
            if (_lentJob is null)
            {
                return;
            }

            TimeSpan left = LendGrace - Stopwatch.GetElapsedTime(_lentAt);
            if (left > TimeSpan.Zero)
            {
                _lendTimer?.Change(left, Timeout.InfiniteTimeSpan); // lent again since the timer was set
                return;
            }

            _lentJob = null;
            _borrowed = false;
            Monitor.PulseAll(pool.Gate);
        }
    }

    /// <summary>Under the pool's gate: whether the slot's thread, looking now, would find nothing to do and wait idle.</summary>
    private bool WouldIdle()
        => _inFlight.Count == 0 && pool.Pending.First is null && pool.State == PoolState.Running && pool.InitializerError is null
            && !_workerDied && _worker is not null && _connection is not null && !(pool.MaxTasksPerChild is { } quota && _tasksHanded >= quota);

    /// <summary>
    /// Waits for one result, then takes every other one already there, and completes them under one acquisition of
    /// the pool's gate (one wake-up, many results).
    /// </summary>
    private void ReceiveAvailable()
    {
        ReceiveOutcome outcome = ReceiveOne();
        while (outcome == ReceiveOutcome.Received && _arrived.Count < 64 && _arrived.Count < _inFlight.Count
            && _connection is { } connection && connection.Poll(TimeSpan.Zero))
        {
            outcome = ReceiveOne();
        }

        CompleteArrived();
        if (outcome == ReceiveOutcome.Ended)
        {
            WorkerEnded();
        }
    }

    private enum ReceiveOutcome
    {
        /// <summary>A result was added to <see cref="_arrived"/>.</summary>
        Received,

        /// <summary>The worker ended or was stopped: <see cref="WorkerEnded"/> must run once the arrived results are completed.</summary>
        Ended,

        /// <summary>Nothing more to receive from this worker (its initializer failed; already handled).</summary>
        Stopped,
    }

    /// <summary>Results received but not yet completed, in order: they belong to the first tasks in flight.</summary>
    private readonly List<WorkResult> _arrived = [];

    /// <summary>The tasks <see cref="CompleteArrived"/> completes (reused).</summary>
    private readonly List<PoolJob> _completing = [];

    /// <summary>Receives one result into <see cref="_arrived"/>; the first of a turn waits, enforcing the running task's timeout.</summary>
    private ReceiveOutcome ReceiveOne()
    {
        if (_inFlight.Count <= _arrived.Count)
        {
            return ReceiveOutcome.Stopped;
        }

        WorkResult result;
        try
        {
            if (_connection is null)
            {
                return ReceiveOutcome.Ended;
            }

            if (_arrived.Count == 0)
            {
                PoolJob head = _inFlight.Peek();
                TimeSpan wait = Timeout.InfiniteTimeSpan;
                if (head.Timeout is { } timeout)
                {
                    TimeSpan ran = Stopwatch.GetElapsedTime(head.StartedAt);
                    wait = timeout > ran ? timeout - ran : TimeSpan.Zero;
                }

                if (!_connection.Poll(wait))
                {
                    head.TimedOut = true;
                    KillWorkerFor(head);
                    _ = _connection.Poll(TimeSpan.FromSeconds(30)); // its end of stream (a killed process's socket closes at once)
                }
            }

            result = _connection.Recv<WorkResult>();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException)
        {
            return ReceiveOutcome.Ended;
        }
        catch (SerializationException ex)
        {
            // The result arrived but could not be read here: that task fails, the stream is still in step.
            result = new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex));
        }

        if (result.Kind == WorkResultKind.InitializerFailed)
        {
            CompleteArrived();
            pool.InitializerFailed(result.Error!);
            FailAll(Pool.InitializerFailure(result.Error!));
            StopWorker();
            return ReceiveOutcome.Stopped;
        }

        _arrived.Add(result);
        return ReceiveOutcome.Received;
    }

    /// <summary>Completes one result at once (a caller that borrowed the slot received it).</summary>
    private void Complete(WorkResult result)
    {
        _arrived.Add(result);
        CompleteArrived();
    }

    /// <summary>Completes the tasks whose results are in <see cref="_arrived"/> (the first ones in flight), in order.</summary>
    private void CompleteArrived()
    {
        int count = _arrived.Count;
        if (count == 0)
        {
            return;
        }

        bool nextCancelled = false;
        long now = Stopwatch.GetTimestamp();
        long ran = Math.Max((now - _inFlight.Peek().StartedAt) / count, 1);
        _averageRunTicks = _averageRunTicks == 0 ? ran : Math.Max((_averageRunTicks * 7 + ran) / 8, 1);
        lock (pool.Gate)
        {
            for (int i = 0; i < count; i++)
            {
                PoolJob job = _inFlight.Dequeue();
                job.Slot = null;
                _completing.Add(job);
            }

            _resultsReceived += count;
            if (_inFlight.TryPeek(out PoolJob? next))
            {
                next.StartedAt = now;
                nextCancelled = next.Cancelled; // cancelled while queued behind these: the worker starts it now
            }
        }

        if (nextCancelled)
        {
            KillWorkerFor(_inFlight.Peek());
        }

        try
        {
            for (int i = 0; i < count; i++)
            {
                WorkResult result = _arrived[i];
                if (result.Kind == WorkResultKind.Success)
                {
                    _completing[i].TrySucceed(result.Value);
                }
                else
                {
                    _completing[i].TryFail(result.Error!);
                }
            }
        }
        finally
        {
            _arrived.Clear();
            _completing.Clear();
        }
    }

    /// <summary>The worker's connection ended: it died (or was stopped). Fail what it was running, requeue the rest.</summary>
    private void WorkerEnded()
    {
        Process? worker = _worker;
        int? exitCode = null;
        if (worker is not null && worker.Join(TimeSpan.FromSeconds(30)))
        {
            exitCode = worker.ExitCode;
        }

        List<PoolJob> failed = [];
        lock (pool.Gate)
        {
            bool terminated = pool.State == PoolState.Terminated;
            PoolJob? target = _killedFor;
            _killedFor = null;

            // Which item the worker was running when it ended, by its number (the first in flight is item
            // _resultsReceived + 1). Before any item started (the word is 0) the first in flight takes the blame, as it
            // would have started next: a task that kills every worker at once must fail, not be retried forever.
            long word = _progress?.Value ?? 0;
            long culprit = word == 0 ? _resultsReceived + 1 : (word & 1) == 1 ? word / 2 : 0;
            long item = _resultsReceived;
            var requeue = new List<PoolJob>();
            while (_inFlight.TryDequeue(out PoolJob? job))
            {
                job.Slot = null;
                item++;
                bool wasRunning = item == culprit;
                bool innocent = wasRunning && target is not null && job != target && !job.Cancelled && !job.TimedOut;
                if ((wasRunning && !innocent) || job.Cancelled || job.TimedOut || terminated)
                {
                    failed.Add(job);
                }
                else
                {
                    // Not started yet (the worker runs items in order), or finished with its result still held in the
                    // worker when it ended (see PoolWorker): either way it runs again elsewhere.
                    requeue.Add(job);
                }
            }

            for (int i = requeue.Count - 1; i >= 0; i--)
            {
                requeue[i].StartedAt = 0;
                pool.Pending.AddFirst(requeue[i].Node);
            }

            if (requeue.Count > 0)
            {
                Monitor.PulseAll(pool.Gate);
            }
        }

        // Replaced before anyone hears of the failure: "it has been replaced" is then already true.
        DisposeWorker();
        bool running;
        lock (pool.Gate)
        {
            running = pool.State == PoolState.Running && pool.InitializerError is null;
        }

        if (running)
        {
            try
            {
                StartWorker();
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"Multiprocessing: pool slot {number} could not start a replacement worker (it retries with the next task): {ex.Message}");
            }
        }

        for (int i = 0; i < failed.Count; i++)
        {
            PoolJob job = failed[i];
            Exception error = job.Cancelled ? new OperationCanceledException("The task was cancelled; its worker was stopped.", job.CancellationToken)
                : job.TimedOut ? new TimeoutException($"The task ran longer than its timeout of {job.Timeout}; its worker (pid {worker?.Pid}) was stopped and replaced.")
                : pool.State == PoolState.Terminated ? Pool.TerminatedException()
                : new ProcessException($"The pool's worker process (pid {worker?.Pid}) died while running this task, with exit code {exitCode?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unknown"}; it has been replaced.", exitCode);
            job.TryFail(error);
        }
    }

    /// <summary>The worker ran its quota of tasks: let it exit and start a fresh one.</summary>
    private void Recycle()
    {
        StopWorker();
        lock (pool.Gate)
        {
            if (pool.State != PoolState.Running)
            {
                return;
            }
        }

        try
        {
            StartReplacement();
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: pool slot {number} could not start a fresh worker (it retries with the next task): {ex.Message}");
        }
    }

    private void StartReplacement()
    {
        DisposeWorker();
        lock (pool.Gate)
        {
            if (pool.State == PoolState.Terminated)
            {
                return;
            }
        }

        StartWorker();
    }

    /// <summary>Hangs up on the worker (it exits when it reads end of stream) and waits for it; kills it if it lingers.</summary>
    private void StopWorker()
    {
        Connection? connection = _connection;
        Process? worker = _worker;
        connection?.Dispose();
        if (worker is not null && !worker.Join(TimeSpan.FromSeconds(10)))
        {
            KillWorker();
            _ = worker.Join(TimeSpan.FromSeconds(30));
        }

        DisposeWorker();
    }

    private void DisposeWorker()
    {
        Connection? connection;
        Process? worker;
        IDisposable? watch;
        SharedValue<long>? progress;
        lock (pool.Gate)
        {
            connection = _connection;
            worker = _worker;
            watch = _deathWatch;
            progress = _progress;
            _connection = null;
            _worker = null;
            _deathWatch = null;
            _progress = null;
            _workerDied = false;
            WorkerPid = null;
        }

        watch?.Dispose();
        connection?.Dispose();
        progress?.Dispose();
        if (worker is not null && !worker.IsAlive)
        {
            worker.Dispose();
        }
    }

    private void FailAll(Exception error)
    {
        List<PoolJob> jobs;
        lock (pool.Gate)
        {
            jobs = [.. _inFlight];
            _inFlight.Clear();
        }

        foreach (PoolJob job in jobs)
        {
            job.TryFail(error);
        }
    }
}
