using System.Collections.Concurrent;
using System.Net;
using System.Reflection;
using System.Runtime.Serialization;
using System.Security.Authentication;
using Multiprocessing.Serialization;

namespace Multiprocessing.Managers;

/// <summary>
/// A manager's server: it keeps the shared objects and runs every proxy call on them, one thread per client
/// connection (as Python's server does). Calls on one object are serialized by a per-object lock, so each call is
/// atomic, except on objects that synchronize themselves (locks, queues, events), whose calls may block.
/// </summary>
internal sealed class ManagerServer : IDisposable, Platform.IPeerDeathListener
{
    private sealed class SharedObject(object target, Type interfaceType, bool synchronizesItself)
    {
        public object Target { get; } = target;

        public Type Interface { get; } = interfaceType;

        public bool SynchronizesItself { get; } = synchronizesItself;

        /// <summary>
        /// Proxies counted for it, by the process holding them (0: a client whose process is unknown, over TCP), under
        /// the server's gate. With no holder left it is dropped; a holder process that ends lets go of all its counts.
        /// </summary>
        public Dictionary<int, int> Holders { get; } = [];

        public void Hold(int pid) => Holders[pid] = Holders.GetValueOrDefault(pid) + 1;

        /// <summary>Drops one count of <paramref name="pid"/>; true when no holder is left.</summary>
        public bool Let(int pid)
        {
            if (Holders.TryGetValue(pid, out int count))
            {
                if (count <= 1)
                {
                    Holders.Remove(pid);
                }
                else
                {
                    Holders[pid] = count - 1;
                }
            }

            return Holders.Count == 0;
        }
    }

    /// <summary>Servers running in this process, by address: a proxy to one of them that arrives here counts its reference directly.</summary>
    private static readonly ConcurrentDictionary<string, ManagerServer> s_running = new(StringComparer.Ordinal);

    private readonly Listener _listener;
    private readonly System.Threading.Lock _gate = new();
    private readonly Dictionary<long, SharedObject> _objects = [];
    private readonly Dictionary<Type, Delegate> _factories = [];
    private readonly Dictionary<string, (Type Interface, Delegate Factory)> _named = new(StringComparer.Ordinal);
    private readonly HashSet<ManagerLine> _lines = [];
    private readonly Dictionary<(ReferenceKey, Type), long> _ids = [];
    private long _lastId;

    /// <summary>Compares the object it holds by reference.</summary>
    private readonly record struct ReferenceKey(object Target)
    {
        public bool Equals(ReferenceKey other) => ReferenceEquals(Target, other.Target);

        public override int GetHashCode() => System.Runtime.CompilerServices.RuntimeHelpers.GetHashCode(Target);
    }
    private volatile bool _stopping;

    public ManagerServer(EndPoint address, byte[] authKey)
    {
        _listener = new Listener(address, authKey);
        Address = new ServerAddress(_listener.Address, authKey);
        s_running[Address.Key] = this;
    }

    /// <summary>Counts a reference to object <paramref name="id"/> of a server running in this process; false when there is no such server or object.</summary>
    public static bool TryAddLocalReference(ServerAddress server, long id)
        => s_running.TryGetValue(server.Key, out ManagerServer? running) && running.AddReference(id, Environment.ProcessId);

    /// <summary>Drops a reference counted by <see cref="TryAddLocalReference"/>; false when the server is not in this process (any more).</summary>
    public static bool TryReleaseLocal(ServerAddress server, long id)
    {
        if (!s_running.TryGetValue(server.Key, out ManagerServer? running))
        {
            return false;
        }

        running.ReleaseReference(id, Environment.ProcessId);
        return true;
    }

    /// <summary>How many objects the server keeps.</summary>
    public int ObjectCount
    {
        get
        {
            lock (_gate)
            {
                return _objects.Count;
            }
        }
    }

    private bool AddReference(long id, int pid)
    {
        lock (_gate)
        {
            if (!_objects.TryGetValue(id, out SharedObject? shared))
            {
                return false;
            }

            shared.Hold(pid);
            return true;
        }
    }

    private void ReleaseReference(long id, int pid)
    {
        lock (_gate)
        {
            if (_objects.TryGetValue(id, out SharedObject? shared) && shared.Let(pid))
            {
                Drop(id, shared);
            }
        }
    }

    private void Drop(long id, SharedObject shared)
    {
        _objects.Remove(id);
        _ids.Remove((new ReferenceKey(shared.Target), shared.Interface));
    }

    private void SweepEndedHolders()
    {
        int[] holders;
        lock (_gate)
        {
            holders = [.. _objects.Values.SelectMany(o => o.Holders.Keys).Distinct().Where(pid => pid != 0 && pid != Environment.ProcessId)];
        }

        foreach (int pid in holders.Where(pid => !Platform.ProcessWatch.IsAlive(pid)))
        {
            ((Platform.IPeerDeathListener)this).OnPeerDied(pid);
        }
    }

    /// <summary>A client process ended: whatever its proxies held goes (its finalizers never reported here).</summary>
    void Platform.IPeerDeathListener.OnPeerDied(int pid)
    {
        lock (_gate)
        {
            foreach ((long id, SharedObject shared) in _objects.ToArray())
            {
                if (shared.Holders.Remove(pid) && shared.Holders.Count == 0)
                {
                    Drop(id, shared);
                }
            }
        }
    }

    /// <summary>Where clients reach this server (the bound address: a port of 0 is resolved).</summary>
    public ServerAddress Address { get; }

    /// <summary>True once <see cref="Stop"/> ran.</summary>
    public bool Stopped => _stopping;

    /// <summary>Registers an object clients get by name (remote managers).</summary>
    public void RegisterNamed(string name, Type interfaceType, Delegate factory)
    {
        lock (_gate)
        {
            _named[name] = (interfaceType, factory);
            _factories[interfaceType] = factory; // a later registration replaces, as on a local manager
        }
    }

    /// <summary>Accepts clients until stopped or cancelled; each connection is served on a thread of its own.</summary>
    public void Serve(CancellationToken cancellationToken = default)
    {
        using CancellationTokenRegistration registration = cancellationToken.Register(Stop);
        while (!_stopping)
        {
            Connection connection;
            try
            {
                connection = _listener.Accept();
            }
            catch (AuthenticationException)
            {
                continue; // a client with the wrong key: it was told so, and gets nothing
            }
            catch (Exception ex) when (ex is ObjectDisposedException or System.Net.Sockets.SocketException or IOException)
            {
                if (_stopping)
                {
                    return;
                }

                continue;
            }

            var line = new ManagerLine(connection);
            lock (_gate)
            {
                if (_stopping)
                {
                    connection.Dispose();
                    return;
                }

                _lines.Add(line);
            }

            new Thread(() => ServeLine(line)) { IsBackground = true, Name = "Multiprocessing manager connection" }.Start();
        }
    }

    /// <summary>Stops accepting and hangs up on every client; their next call fails with <see cref="IOException"/>.</summary>
    public void Stop()
    {
        ManagerLine[] open;
        lock (_gate)
        {
            if (_stopping)
            {
                return;
            }

            _stopping = true;
            open = [.. _lines];
            _lines.Clear();
        }

        s_running.TryRemove(new KeyValuePair<string, ManagerServer>(Address.Key, this));
        Platform.PeerWatch.Forget(this);
        _listener.Dispose();
        foreach (ManagerLine line in open)
        {
            line.Close(); // each serving thread unmaps its own channel when it ends
        }
    }

    public void Dispose() => Stop();

    private void ServeLine(ManagerLine line)
    {
        try
        {
            while (!_stopping)
            {
                ManagerRequest request;
                try
                {
                    request = line.Receive(ManagerRequestConverter.Instance);
                }
                catch (SerializationException ex)
                {
                    Reply(line, new ManagerResponse { Error = RemoteException.FromException(ex) });
                    continue;
                }

                if (request.Kind == RequestKind.OpenChannel && line.Channel is null && request.Arguments is [ChannelOffer offer])
                {
                    try
                    {
                        line.AcceptChannel(offer);
                    }
                    catch (InvalidDataException ex)
                    {
                        Reply(line, new ManagerResponse { Error = RemoteException.FromException(ex) }); // the client stays on the socket
                        continue;
                    }

                    Platform.PeerWatch.Watch(offer.Pid, this);
                    if (_stopping)
                    {
                        line.Close(); // Stop may have passed this line before its channel existed
                    }

                    continue;
                }

                // A proxy's first reference is counted before the call, and before this process's collected proxies let go.
                bool added = request.AddReference && AddReference(request.ObjectId, line.ClientPid);
                if (request.Releases is { } releases)
                {
                    foreach (long id in releases)
                    {
                        ReleaseReference(id, line.ClientPid);
                    }
                }

                ManagerResponse response;
                try
                {
                    response = request.Kind switch
                    {
                        RequestKind.Call => Call(request, line),
                        RequestKind.Batch => RunBatch(request, line),
                        _ => Handle(request, line.ClientPid),
                    };
                }
                catch (Exception ex)
                {
                    response = new ManagerResponse { Error = RemoteException.FromException(ex is TargetInvocationException { InnerException: { } inner } ? inner : ex) };
                }

                response.ReferenceAdded = added;
                Reply(line, response);
                if (request.Kind == RequestKind.Shutdown)
                {
                    Stop();
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or System.Net.Sockets.SocketException)
        {
            // the client went away
        }
        finally
        {
            lock (_gate)
            {
                _lines.Remove(line);
            }

            line.Dispose();
        }
    }

    private static void Reply(ManagerLine line, ManagerResponse response)
    {
        try
        {
            line.Send(response, ManagerResponseConverter.Instance);
        }
        catch (SerializationException ex)
        {
            if (response.Value is object?[] answers && answers.All(a => a is ManagerResponse))
            {
                // A batch: only the answers that cannot cross become errors; the others' calls did run.
                for (int i = 0; i < answers.Length; i++)
                {
                    try
                    {
                        _ = BinarySerializer.Default.Serialize<object?>(answers[i]);
                    }
                    catch (SerializationException one)
                    {
                        answers[i] = CannotSendBack(one);
                    }
                }

                line.Send(response, ManagerResponseConverter.Instance);
                return;
            }

            line.Send(CannotSendBack(ex), ManagerResponseConverter.Instance);
        }
    }

    private static ManagerResponse CannotSendBack(SerializationException ex)
        => new() { Error = RemoteException.FromException(new SerializationException($"The manager could not send the result back: {ex.Message}", ex)) };

    private ManagerResponse Handle(ManagerRequest request, int pid)
    {
        switch (request.Kind)
        {
            case RequestKind.Create:
            {
                Type interfaceType = request.Interface ?? throw new ArgumentException("Create needs an interface.");
                object target;
                if (request.Name is { } kind)
                {
                    target = BuiltinObjects.CreateSynchronization(kind, request.Arguments);
                    return Reference(target, interfaceType, synchronizesItself: true, pid);
                }

                if (BuiltinObjects.TryCreate(interfaceType, request.Arguments, out object? builtin, out bool synchronizesItself))
                {
                    target = builtin!;
                }
                else
                {
                    Delegate factory;
                    lock (_gate)
                    {
                        factory = _factories.GetValueOrDefault(interfaceType)
                            ?? throw new InvalidOperationException($"No type is registered for {interfaceType.FullName}: call Register<{interfaceType.Name}>(factory) first.");
                    }

                    target = factory.DynamicInvoke() ?? throw new InvalidOperationException($"The factory registered for {interfaceType.FullName} returned null.");
                    synchronizesItself = false;
                }

                return Reference(target, interfaceType, synchronizesItself, pid);
            }

            case RequestKind.Register:
            {
                Type interfaceType = request.Interface ?? throw new ArgumentException("Register needs an interface.");
                Delegate factory = request.Factory ?? throw new ArgumentException("Register needs a factory.");
                lock (_gate)
                {
                    _factories[interfaceType] = factory;
                }

                return new ManagerResponse();
            }

            case RequestKind.Get:
            {
                (Type Interface, Delegate Factory) entry;
                lock (_gate)
                {
                    if (request.Name is null || !_named.TryGetValue(request.Name, out entry))
                    {
                        throw new KeyNotFoundException($"The manager has nothing registered under the name '{request.Name}'.");
                    }
                }

                if (request.Interface is { } wanted && !wanted.IsAssignableFrom(entry.Interface))
                {
                    throw new InvalidCastException($"'{request.Name}' is registered as {entry.Interface.FullName}, not {wanted.FullName}.");
                }

                object target = entry.Factory.DynamicInvoke() ?? throw new InvalidOperationException($"The factory registered as '{request.Name}' returned null.");
                return Reference(target, request.Interface ?? entry.Interface, BuiltinObjects.SynchronizesItself(target), pid);
            }

            case RequestKind.OpenChannel: // a second offer on a line that has one: refused by a plain answer
                if (request.Arguments is [ChannelOffer extra])
                {
                    extra.Region.Dispose();
                }

                return new ManagerResponse();

            case RequestKind.Stats:
                if (request.Name == "collect")
                {
                    // Proxies the server holds (in a shared list, say) let go when collected here: tests ask for it.
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                    SweepEndedHolders(); // without waiting for the watch to report them
                }

                return new ManagerResponse { Value = ObjectCount };

            case RequestKind.Shutdown:
            case RequestKind.Ping:
                return new ManagerResponse();

            default:
                throw new ArgumentException($"Unknown request {request.Kind}.");
        }
    }

    /// <summary>What the server works out once per method: reflection allocates on every question.</summary>
    internal sealed class MethodPlan
    {
        public MethodPlan(MethodInfo method)
        {
            Method = method;
            ParameterInfo[] parameters = method.GetParameters();
            TokenParameters = [.. parameters.Select((p, i) => (p, i)).Where(x => x.p.ParameterType == typeof(CancellationToken)).Select(x => x.i)];
            ByRefParameters = [.. parameters.Select((p, i) => (p, i)).Where(x => x.p.ParameterType.IsByRef).Select(x => x.i)];
            ParameterCount = parameters.Length;
            Type returnType = method.ReturnType;
            ReturnsValueTask = returnType.IsValueType && returnType.Name.StartsWith("ValueTask", StringComparison.Ordinal);
            ReturnsTask = ReturnsValueTask || typeof(Task).IsAssignableFrom(returnType);
            TaskHasResult = returnType.IsGenericType;
            AsTask = ReturnsValueTask ? returnType.GetMethod("AsTask") : null;
            TaskResult = TaskHasResult ? (ReturnsValueTask ? AsTask!.ReturnType : returnType).GetProperty("Result") : null;
        }

        public MethodInfo Method { get; }

        public int[] TokenParameters { get; }

        public int[] ByRefParameters { get; }

        public int ParameterCount { get; }

        public bool ReturnsTask { get; }

        public bool ReturnsValueTask { get; }

        public bool TaskHasResult { get; }

        public MethodInfo? AsTask { get; }

        public PropertyInfo? TaskResult { get; }
    }

    private static readonly ConcurrentDictionary<(Type, int), MethodPlan> s_plans = new();

    private ManagerResponse Call(ManagerRequest request, ManagerLine line) => Execute(request, ResolvePlan(request, line), line.ClientPid);

    /// <summary>The method a call names (learning its number on this line) or numbers; only the line's own thread calls it.</summary>
    private static MethodPlan ResolvePlan(ManagerRequest request, ManagerLine line)
    {
        if (request.Interface is { } named)
        {
            MethodPlan plan = s_plans.GetOrAdd((named, request.MethodToken), static key => new MethodPlan(
                key.Item1.GetMethods().FirstOrDefault(m => m.MetadataToken == key.Item2)
                ?? throw new MissingMethodException($"{key.Item1.FullName} has no method with token {key.Item2} here (do both sides run the same build?).")));
            if (request.MethodSlot > 0)
            {
                line.LearnSlot(request.MethodSlot, plan);
            }

            return plan;
        }

        return line.SlotPlan(request.MethodSlot) ?? throw new ArgumentException("A call needs the method's interface.");
    }

    /// <summary>
    /// Runs a batch of calls in order on this thread. When one of them has kept the batch from moving for a while (it
    /// waits in the server, perhaps for a call later in the same batch), another thread goes on with the rest.
    /// </summary>
    private ManagerResponse RunBatch(ManagerRequest request, ManagerLine line)
    {
        object?[] items = request.Arguments ?? [];
        var calls = new ManagerRequest[items.Length];
        var plans = new MethodPlan?[items.Length];
        var answers = new object?[items.Length];
        for (int i = 0; i < items.Length; i++)
        {
            calls[i] = items[i] as ManagerRequest ?? throw new ArgumentException("A batch holds calls only.");
            try
            {
                plans[i] = ResolvePlan(calls[i], line);
            }
            catch (Exception ex)
            {
                answers[i] = new ManagerResponse { Error = RemoteException.FromException(ex) };
            }
        }

        var run = new BatchRun(this, calls, plans, answers, line.ClientPid);
        using (calls.Length > 1 ? new Timer(static state => ((BatchRun)state!).HelpIfStuck(), run, 20, 20) : null)
        {
            run.Work();
            run.WaitAll();
        }

        return new ManagerResponse { Value = answers };
    }

    private sealed class BatchRun(ManagerServer server, ManagerRequest[] calls, MethodPlan?[] plans, object?[] answers, int pid)
    {
        private static readonly long StuckAfter = System.Diagnostics.Stopwatch.Frequency / 20; // 50 ms
        private readonly object _doneGate = new();
        private int _next;
        private int _remaining = calls.Length;
        private long _progress = System.Diagnostics.Stopwatch.GetTimestamp();

        public void Work()
        {
            while (true)
            {
                int i = Interlocked.Increment(ref _next) - 1;
                if (i >= calls.Length)
                {
                    return;
                }

                Volatile.Write(ref _progress, System.Diagnostics.Stopwatch.GetTimestamp());
                if (plans[i] is { } plan)
                {
                    ManagerRequest call = calls[i];
                    bool added = call.AddReference && server.AddReference(call.ObjectId, pid);
                    ManagerResponse answer;
                    try
                    {
                        answer = server.Execute(call, plan, pid);
                    }
                    catch (Exception ex)
                    {
                        answer = new ManagerResponse { Error = RemoteException.FromException(ex is TargetInvocationException { InnerException: { } inner } ? inner : ex) };
                    }

                    answer.ReferenceAdded = added;
                    answers[i] = answer;
                }

                Volatile.Write(ref _progress, System.Diagnostics.Stopwatch.GetTimestamp());
                if (Interlocked.Decrement(ref _remaining) == 0)
                {
                    lock (_doneGate)
                    {
                        Monitor.PulseAll(_doneGate);
                    }
                }
            }
        }

        public void WaitAll()
        {
            lock (_doneGate)
            {
                while (Volatile.Read(ref _remaining) > 0)
                {
                    Monitor.Wait(_doneGate);
                }
            }
        }

        public void HelpIfStuck()
        {
            long progress = Volatile.Read(ref _progress);
            if (Volatile.Read(ref _next) < calls.Length && System.Diagnostics.Stopwatch.GetTimestamp() - progress > StuckAfter
                && Interlocked.CompareExchange(ref _progress, System.Diagnostics.Stopwatch.GetTimestamp(), progress) == progress)
            {
                new Thread(Work) { IsBackground = true, Name = "Multiprocessing manager batch helper" }.Start();
            }
        }
    }

    private ManagerResponse Execute(ManagerRequest request, MethodPlan plan, int pid)
    {
        SharedObject shared;
        lock (_gate)
        {
            if (!_objects.TryGetValue(request.ObjectId, out shared!))
            {
                throw new KeyNotFoundException($"The manager has no object {request.ObjectId} (it was created by another server, or the server restarted).");
            }
        }

        MethodInfo method = plan.Method;
        Type declaring = method.DeclaringType!;
        if (!declaring.IsInterface || !declaring.IsAssignableFrom(shared.Interface))
        {
            throw new MissingMethodException($"Only members of {shared.Interface.FullName} can be called through its proxy, not of {declaring.FullName}.");
        }

        object?[]? arguments = request.Arguments;
        foreach (int i in plan.TokenParameters)
        {
            if (arguments is not null && i < arguments.Length)
            {
                arguments[i] = CancellationToken.None; // tokens do not cross; the client keeps its own
            }
        }

        object? result;
        if (shared.SynchronizesItself)
        {
            result = method.Invoke(shared.Target, arguments);
        }
        else
        {
            lock (shared)
            {
                result = method.Invoke(shared.Target, arguments);
            }
        }

        if (plan.ReturnsTask && result is not null)
        {
            if (plan.AsTask is { } asTask)
            {
                result = asTask.Invoke(result, null); // boxed ValueTask → its task
            }

            var task = (Task)result!;
            task.GetAwaiter().GetResult(); // a task-returning member: the call ends when its task does
            result = plan.TaskResult?.GetValue(task);
        }

        object?[]? outs = null;
        foreach (int i in plan.ByRefParameters)
        {
            (outs ??= new object?[plan.ParameterCount])[i] = arguments![i];
        }

        Type returnType = method.ReturnType;
        if (result is not null && returnType.IsInterface && !BuiltinObjects.IsCopied(result) && IsProxied(returnType))
        {
            ManagerResponse reference = Reference(result, returnType, BuiltinObjects.SynchronizesItself(result), pid);
            return new ManagerResponse { ReferenceId = reference.ReferenceId, ReferenceInterface = returnType, OutArguments = outs };
        }

        return new ManagerResponse { Value = result, OutArguments = outs };
    }

    /// <summary>Whether results of this interface type stay on the server and go back as proxies (registered types).</summary>
    private bool IsProxied(Type interfaceType)
    {
        if (BuiltinObjects.IsAlwaysProxied(interfaceType))
        {
            return true;
        }

        lock (_gate)
        {
            return _factories.ContainsKey(interfaceType);
        }
    }

    private ManagerResponse Reference(object target, Type interfaceType, bool synchronizesItself, int pid)
    {
        if (!interfaceType.IsInstanceOfType(target))
        {
            throw new InvalidCastException($"The object made for {interfaceType.FullName} is a {target.GetType().FullName}, which does not implement it.");
        }

        long id;
        lock (_gate)
        {
            // The same object through the same interface keeps one id: a lock fetched on every use (GetLock()) does
            // not grow the table. Each answer carrying the id counts one reference, which the proxy made of it holds.
            if (_ids.TryGetValue((new ReferenceKey(target), interfaceType), out id))
            {
                _objects[id].Hold(pid);
                return new ManagerResponse { ReferenceId = id, ReferenceInterface = interfaceType };
            }

            id = ++_lastId;
            var shared = new SharedObject(target, interfaceType, synchronizesItself);
            shared.Hold(pid);
            _objects[id] = shared;
            _ids[(new ReferenceKey(target), interfaceType)] = id;
        }

        return new ManagerResponse { ReferenceId = id, ReferenceInterface = interfaceType };
    }

    /// <summary>The body of a local manager's server process: listen, tell the parent where, serve until shut down.</summary>
    public static void RunInChild(Connection toParent)
    {
        byte[] key = System.Security.Cryptography.RandomNumberGenerator.GetBytes(32);
        string name = $"\0mp-manager-{Environment.ProcessId}-{Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(8))}";
        using var server = new ManagerServer(new System.Net.Sockets.UnixDomainSocketEndPoint(name), key);
        (int family, byte[] bytes) = server.Address.Encode();
        toParent.Send((family, bytes, key));

        // The parent hangs up when it disposes the manager or dies: either way the server stops.
        var watcher = new Thread(() =>
        {
            try
            {
                _ = toParent.Recv<int>();
            }
            catch (Exception ex) when (ex is IOException or SerializationException or ObjectDisposedException)
            {
            }

            server.Stop();
        })
        { IsBackground = true, Name = "Multiprocessing manager owner watch" };
        watcher.Start();
        server.Serve();
    }
}
