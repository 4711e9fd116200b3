using System.Runtime.CompilerServices;
using System.Runtime.Serialization;

namespace Multiprocessing.Pooling;

/// <summary>
/// One unit of work shipped to a pool worker: a call, or a chunk of a map. Its function may be shared by many items
/// (every chunk of a map, repeated calls of a stateless lambda): such a function has an id, crosses to each worker once,
/// and later items refer to it by id alone (see <see cref="FunctionCache"/>).
/// </summary>
internal abstract class WorkItem
{
    /// <summary>
    /// Set for a task with a timeout or a cancellation token: the worker sends every result it holds before starting
    /// it, so the pool knows when it starts (see <see cref="PoolWorker"/>).
    /// </summary>
    public bool Watched { get; set; }

    /// <summary>Non-zero when the function may be cached in the worker under this id.</summary>
    public abstract long FunctionId { get; }

    /// <summary>The function, or null when the item refers to a cached one by <see cref="FunctionId"/>.</summary>
    public abstract Delegate? Function { get; }

    /// <summary>The same item without its function, for a worker that already caches it.</summary>
    public abstract WorkItem WithoutFunction();

    /// <summary>Runs in the worker with the item's (or the cached) function and returns what goes back.</summary>
    public abstract object? Run(Delegate function);

    private static long s_lastId;

    /// <summary>A fresh function id.</summary>
    public static long NewFunctionId() => Interlocked.Increment(ref s_lastId);

    private static readonly ConditionalWeakTable<Delegate, StrongBox<long>> s_statelessIds = new();

    /// <summary>
    /// An id for a delegate that holds no state (a static method or a lambda capturing nothing), so repeated calls
    /// of it cross once per worker; 0 for one with state, which is shipped every time (its captured values may change).
    /// </summary>
    public static long IdIfStateless(Delegate function)
    {
        if (s_statelessIds.TryGetValue(function, out StrongBox<long>? known))
        {
            return known.Value;
        }

        if (function.HasSingleTarget && (function.Target is null || !HasInstanceFields(function.Target.GetType())))
        {
            return s_statelessIds.GetValue(function, static _ => new StrongBox<long>(NewFunctionId())).Value;
        }

        return 0;
    }

    private static bool HasInstanceFields(Type type)
        => type.GetFields(System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.NonPublic).Length > 0;
}

/// <summary>A single call: <c>Apply</c>, <c>ApplyAsync</c>.</summary>
internal sealed class CallItem<TResult>(Func<TResult>? function, long functionId) : WorkItem
{
    private readonly Func<TResult>? _function = function;
    private readonly long _functionId = functionId;

    public override long FunctionId => _functionId;

    public override Delegate? Function => _function;

    public override WorkItem WithoutFunction() => new CallItem<TResult>(null, _functionId) { Watched = Watched };

    public override object? Run(Delegate function) => ((Func<TResult>)function)();
}

/// <summary>Stands in for a task that could not be sent, keeping the worker's results in step with the tasks in flight.</summary>
internal sealed class SkipItem : WorkItem
{
    public static readonly SkipItem Instance = new();

    public override long FunctionId => 0;

    public override Delegate? Function => null;

    public override WorkItem WithoutFunction() => this;

    public override object? Run(Delegate function) => null;
}

/// <summary>A call with nothing to return.</summary>
internal sealed class ActionItem(Action? action, long functionId) : WorkItem
{
    private readonly Action? _action = action;
    private readonly long _functionId = functionId;

    public override long FunctionId => _functionId;

    public override Delegate? Function => _action;

    public override WorkItem WithoutFunction() => new ActionItem(null, _functionId) { Watched = Watched };

    public override object? Run(Delegate function)
    {
        ((Action)function)();
        return null;
    }
}

/// <summary>A chunk of a map: the function applied to each item in order; the first exception fails the chunk (Python's mapstar).</summary>
internal sealed class MapChunk<T, TResult>(Func<T, TResult>? function, long functionId, T[] items) : WorkItem
{
    private readonly Func<T, TResult>? _function = function;
    private readonly long _functionId = functionId;
    private readonly T[] _items = items;

    public override long FunctionId => _functionId;

    public override Delegate? Function => _function;

    public override WorkItem WithoutFunction() => new MapChunk<T, TResult>(null, _functionId, _items) { Watched = Watched };

    public override object? Run(Delegate function)
    {
        var typed = (Func<T, TResult>)function;
        var results = new TResult[_items.Length];
        for (int i = 0; i < _items.Length; i++)
        {
            results[i] = typed(_items[i]);
        }

        return results;
    }
}

/// <summary>
/// The functions one worker caches, mirrored exactly on both sides: the pool's slot records what it sent to its worker
/// and the worker what it received, in the same order with the same bound, so both evict the same ids.
/// </summary>
internal sealed class FunctionCache
{
    private const int Capacity = 128;

    private readonly Dictionary<long, Delegate?> _entries = [];
    private readonly System.Collections.Generic.Queue<long> _order = new();

    public bool Contains(long id) => _entries.ContainsKey(id);

    public Delegate? Get(long id) => _entries.GetValueOrDefault(id);

    public void Add(long id, Delegate? function)
    {
        if (!_entries.TryAdd(id, function))
        {
            return;
        }

        _order.Enqueue(id);
        if (_order.Count > Capacity)
        {
            _entries.Remove(_order.Dequeue());
        }
    }

    public void Clear()
    {
        _entries.Clear();
        _order.Clear();
    }
}

/// <summary>What a worker sends back for each item it received, in the order received.</summary>
internal sealed class WorkResult(WorkResultKind kind, object? value, RemoteException? error)
{
    public WorkResultKind Kind { get; } = kind;

    public object? Value { get; } = value;

    public RemoteException? Error { get; } = error;
}

internal enum WorkResultKind : byte
{
    /// <summary>The item ran and returned <see cref="WorkResult.Value"/>.</summary>
    Success,

    /// <summary>The item threw, or could not be read, or its result could not be sent: <see cref="WorkResult.Error"/>.</summary>
    Failure,

    /// <summary>The pool's initializer threw in this worker, which then ends: <see cref="WorkResult.Error"/>.</summary>
    InitializerFailed,
}

/// <summary>
/// The loop a pool worker process runs: receive an item, run it, send its result, until the pool hangs up.
/// </summary>
/// <remarks>
/// Results of short tasks are sent together: while the next item already sits whole in the read-ahead buffer, a
/// result waits to go out with the following ones (one write for many, and one wake-up of the pool's thread). They
/// go out before the worker would block, before it starts a watched item (one with a timeout or a cancellation
/// token: the pool must see when it starts), when 64 have gathered, and at the latest 1 ms after the first, by a
/// timer (a long task must not hold the earlier ones back). So that a worker that dies still fails only the task
/// it was running, it writes to a shared word which item it runs (<c>2n + 1</c> while running the n-th item it
/// received, <c>2n</c> once it finished): the pool reads it when the worker ends.
/// </remarks>
internal static class PoolWorker
{
    /// <summary>How long an idle worker keeps polling for its next task before it sleeps.</summary>
    public static readonly TimeSpan SpinBeforeSleep = TimeSpan.FromMicroseconds(50);

    /// <summary>The longest a finished task's result waits for others to go out with.</summary>
    private static readonly TimeSpan HoldLimit = TimeSpan.FromMilliseconds(1);

    private const int HoldCount = 64;

    public static void Serve(Connection connection, Action? initializer, SharedValue<long> progress)
    {
        using (connection)
        using (progress)
        {
            try
            {
                initializer?.Invoke();
            }
            catch (Exception ex)
            {
                connection.Send(new WorkResult(WorkResultKind.InitializerFailed, null, RemoteException.FromException(ex)));
                return;
            }

            using var outbox = new Outbox(connection);
            var functions = new FunctionCache();
            long received = 0;
            long receivedAtLastWait = 0;
            while (true)
            {
                bool waits = !connection.HasBufferedMessage;
                if (waits)
                {
                    outbox.Flush(); // about to wait for input: nothing may stay behind

                    // Spin only when tasks come one at a time (a caller waiting on each, as Apply): its next one then
                    // comes within microseconds. Tasks that come many at a time are a pool thread's stream, whose
                    // refill takes longer: spinning then only takes the CPU that thread needs.
                    if (received - receivedAtLastWait <= 1)
                    {
                        _ = connection.SpinThenPoll(SpinBeforeSleep, TimeSpan.Zero);
                    }

                    receivedAtLastWait = received;
                }

                WorkItem? item;
                try
                {
                    item = connection.Recv<WorkItem?>();
                    received++;
                }
                catch (EndOfStreamException)
                {
                    return; // the pool closed this worker's connection: done
                }
                catch (SerializationException ex)
                {
                    // The whole message was read, so the stream is still in step: this item fails, the next one may not.
                    received++;
                    progress.Value = 2 * received;
                    outbox.Add(new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex)));
                    continue;
                }

                if (item is null)
                {
                    return;
                }

                if (item.Watched)
                {
                    outbox.Flush(); // the pool times a watched item from the result before it
                }

                progress.Value = 2 * received + 1;
                WorkResult result;
                try
                {
                    Delegate? function = item.Function;
                    if (item.FunctionId != 0)
                    {
                        if (function is null)
                        {
                            function = functions.Get(item.FunctionId)
                                ?? throw new InvalidOperationException($"The pool worker has no function with id {item.FunctionId} (it failed to arrive earlier).");
                        }
                        else
                        {
                            functions.Add(item.FunctionId, function);
                        }
                    }

                    result = new WorkResult(WorkResultKind.Success, item.Run(function!), null);
                }
                catch (Exception ex)
                {
                    result = new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex));
                }

                progress.Value = 2 * received;
                outbox.Add(result);
            }
        }
    }

    /// <summary>Results waiting to go out together (see the remarks on <see cref="PoolWorker"/>).</summary>
    private sealed class Outbox : IMessageSource<WorkResult>, IDisposable
    {
        private readonly Connection _connection;
        private readonly object _gate = new();
        private readonly Timer _timer;
        private List<WorkResult> _held = [];
        private List<WorkResult> _sending = [];

        public Outbox(Connection connection)
        {
            _connection = connection;
            _timer = new Timer(static state => ((Outbox)state!).Flush(), this, Timeout.Infinite, Timeout.Infinite);
        }

        public int Count => _sending.Count;

        public void Add(WorkResult result)
        {
            lock (_gate)
            {
                _held.Add(result);
                if (_held.Count == 1)
                {
                    _ = _timer.Change(HoldLimit, Timeout.InfiniteTimeSpan);
                }
                else if (_held.Count >= HoldCount)
                {
                    SendHeld();
                }
            }
        }

        public void Flush()
        {
            lock (_gate)
            {
                if (_held.Count > 0)
                {
                    SendHeld();
                }
            }
        }

        private void SendHeld()
        {
            (_sending, _held) = (_held, _sending);
            try
            {
                _connection.SendMany(this);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException)
            {
                // the pool hung up: the main loop sees the end of the stream next
            }
            finally
            {
                _sending.Clear();
            }
        }

        public WorkResult Produce(int index) => _sending[index];

        public void Serialized(int index)
        {
        }

        public WorkResult Failed(int index, SerializationException error)
            => new(WorkResultKind.Failure, null, RemoteException.FromException(
                new SerializationException($"The task's result could not be sent back: {error.Message}", error)));

        public void Dispose()
        {
            lock (_gate)
            {
                _timer.Dispose();
            }
        }
    }
}
