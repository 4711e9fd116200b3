using System.Reflection;
using Multiprocessing.Serialization;

namespace Multiprocessing.Managers;

/// <summary>
/// The base of every generated proxy: an interface implemented at run time whose every call goes to the manager's
/// server and runs on the real object there. A proxy crosses to other processes as its server's address, auth key and
/// object id, and the receiver connects to the same object.
/// </summary>
public class ManagerProxy : DispatchProxy
{
    internal ServerAddress Server { get; private set; } = null!;

    internal long ObjectId { get; private set; }

    internal Type Interface { get; private set; } = null!;

    private const int NoReference = 0, Counting = 1, Counted = 2;

    /// <summary>Whether the server counts a reference for this proxy (then collecting it lets go of one).</summary>
    private int _reference;

    /// <summary>
    /// Makes a proxy of <paramref name="interfaceType"/> for object <paramref name="id"/> of <paramref name="server"/>;
    /// <paramref name="counted"/>: the server already counted a reference for it (it answered with the id).
    /// </summary>
    internal static object Create(ServerAddress server, long id, Type interfaceType, bool counted)
    {
        var proxy = (ManagerProxy)DispatchProxy.Create(interfaceType, typeof(ManagerProxy));
        proxy.Server = server;
        proxy.ObjectId = id;
        proxy.Interface = interfaceType;
        proxy._reference = counted ? Counted : NoReference;
        return proxy;
    }

    /// <summary>Lets go of this proxy's reference: the server drops the object once no proxy anywhere holds one (as Python's decref).</summary>
    ~ManagerProxy()
    {
        if (_reference == Counted && Server is not null)
        {
            ReferenceReleases.Release(Server, ObjectId);
        }
    }

    /// <summary>Sends the call to the server and returns what it answered (a proxy when the answer is a shared object).</summary>
    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        Type returnType = targetMethod.ReturnType;
        if (returnType == typeof(LockScope) && targetMethod.Name == "EnterScope")
        {
            // A scope must release through this proxy, not carry the server's lock back here.
            Call(targetMethod.DeclaringType!.GetMethod("Acquire", Type.EmptyTypes)
                ?? throw new MissingMethodException($"{targetMethod.DeclaringType.Name} has no Acquire() for EnterScope."), []);
            return new LockScope(new ProxyScope(this, targetMethod.DeclaringType));
        }

        if (returnType == typeof(Task) || (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(Task<>))
            || returnType == typeof(ValueTask) || (returnType.IsGenericType && returnType.GetGenericTypeDefinition() == typeof(ValueTask<>)))
        {
            return InvokeAsync(targetMethod, args);
        }

        return Call(targetMethod, args);
    }

    /// <summary>
    /// A task-returning method completes when the server's call does. Calls on objects that wait in the server (locks,
    /// queues, events…) run on a pool thread each, with its own line (which thread holds a lock matters there); other
    /// objects' calls share this process's <see cref="AsyncCalls"/> workers. The cancellation token is honoured until
    /// the call is sent; a call the server has begun runs to its end.
    /// </summary>
    private object InvokeAsync(MethodInfo method, object?[]? args)
    {
        AsyncPlan plan = s_asyncPlans.GetOrAdd(method, static m => new AsyncPlan(m));
        CancellationToken token = default;
        foreach (int i in plan.TokenParameters)
        {
            token = (CancellationToken)args![i]!;
            args[i] = null; // tokens cannot cross; the server passes none
        }

        _sharesWorkers ??= ManagerLine.CanShareMemory(Server) && !BuiltinObjects.IsSynchronizationInterface(Interface);
        return plan.Run(this, method, args, _sharesWorkers.Value, token);
    }

    private bool? _sharesWorkers;

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<MethodInfo, AsyncPlan> s_asyncPlans = new();

    /// <summary>How a task-returning method is run, worked out once (reflection and generic instantiation are slow).</summary>
    private sealed class AsyncPlan
    {
        public AsyncPlan(MethodInfo method)
        {
            ParameterInfo[] parameters = method.GetParameters();
            TokenParameters = [.. Enumerable.Range(0, parameters.Length).Where(i => parameters[i].ParameterType == typeof(CancellationToken))];
            Type returnType = method.ReturnType;
            if (returnType == typeof(Task) || returnType == typeof(ValueTask))
            {
                bool valueTask = returnType == typeof(ValueTask);
                Run = (proxy, m, args, shared, token) =>
                {
                    Task task = shared ? AsyncCalls.For(proxy.Server).Run<object?>(proxy, m, args, token) : Task.Run(() => { proxy.Call(m, args); }, token);
                    return valueTask ? new ValueTask(task) : task;
                };
            }
            else
            {
                bool valueTask = returnType.GetGenericTypeDefinition() == typeof(ValueTask<>);
                Run = (valueTask ? s_runValueTyped : s_runTyped)
                    .MakeGenericMethod(returnType.GetGenericArguments()[0])
                    .CreateDelegate<Func<ManagerProxy, MethodInfo, object?[]?, bool, CancellationToken, object>>();
            }
        }

        public int[] TokenParameters { get; }

        public Func<ManagerProxy, MethodInfo, object?[]?, bool, CancellationToken, object> Run { get; }
    }

    private static readonly MethodInfo s_runValueTyped = typeof(ManagerProxy).GetMethod(nameof(RunValueTyped), BindingFlags.NonPublic | BindingFlags.Static)!;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "Bound to a delegate returning object.")]
    private static object RunValueTyped<T>(ManagerProxy proxy, MethodInfo method, object?[]? args, bool shared, CancellationToken token)
        => new ValueTask<T>(RunTypedTask<T>(proxy, method, args, shared, token));

    private static readonly MethodInfo s_runTyped = typeof(ManagerProxy).GetMethod(nameof(RunTyped), BindingFlags.NonPublic | BindingFlags.Static)!;

    [System.Diagnostics.CodeAnalysis.SuppressMessage("Performance", "CA1859", Justification = "Bound to a delegate returning object.")]
    private static object RunTyped<T>(ManagerProxy proxy, MethodInfo method, object?[]? args, bool shared, CancellationToken token)
        => RunTypedTask<T>(proxy, method, args, shared, token);

    private static Task<T> RunTypedTask<T>(ManagerProxy proxy, MethodInfo method, object?[]? args, bool shared, CancellationToken token)
        => shared ? AsyncCalls.For(proxy.Server).Run<T>(proxy, method, args, token) : Task.Run(() => (T)proxy.Call(method, args)!, token);

    private sealed class ProxyScope(ManagerProxy proxy, Type declaring) : IScopeRelease
    {
        public void ReleaseScope() => proxy.Call(declaring.GetMethod("Release", Type.EmptyTypes) ?? declaring.GetMethod("Release")!, declaring.GetMethod("Release", Type.EmptyTypes) is null ? [1] : []);
    }

    /// <summary>A thread's request object between its calls (a blocking call is done with it when it returns).</summary>
    [ThreadStatic]
    private static ManagerRequest? t_spare;

    private object? Call(MethodInfo targetMethod, object?[]? args)
    {
        ManagerRequest request = t_spare ?? new ManagerRequest();
        t_spare = null; // a call made meanwhile on this thread (none is expected) gets a request of its own
        try
        {
            BeginCall(targetMethod, args, request);
            ManagerResponse response;
            try
            {
                response = ManagerClient.Call(Server, request, targetMethod);
            }
            catch
            {
                AbortCall(request);
                throw;
            }

            return EndCall(targetMethod, args, request, response);
        }
        finally
        {
            request.ClearCall();
            t_spare = request;
        }
    }

    /// <summary>The request for a call; a proxy that arrived from another process counts its reference with its first call (no extra round trip).</summary>
    internal ManagerRequest BeginCall(MethodInfo targetMethod, object?[]? args, ManagerRequest? into = null)
    {
        bool counting = _reference == NoReference && Interlocked.CompareExchange(ref _reference, Counting, NoReference) == NoReference;
        ManagerRequest request = into ?? new ManagerRequest();
        request.Kind = RequestKind.Call;
        request.ObjectId = ObjectId;
        request.Interface = targetMethod.DeclaringType;
        request.MethodToken = targetMethod.MetadataToken;
        request.Arguments = args;
        request.AddReference = counting;
        return request;
    }

    /// <summary>The call never reached the server: the reference it was counting is not held.</summary>
    internal void AbortCall(ManagerRequest request)
    {
        if (request.AddReference)
        {
            _reference = NoReference;
        }
    }

    /// <summary>The call's result from the server's answer (a proxy when the answer is a shared object); throws the server's exception.</summary>
    internal object? EndCall(MethodInfo targetMethod, object?[]? args, ManagerRequest request, ManagerResponse response)
    {
        if (request.AddReference)
        {
            _reference = response.ReferenceAdded ? Counted : NoReference;
        }

        if (response.Error is { } error)
        {
            throw error;
        }

        if (response.OutArguments is { } outs && args is not null)
        {
            for (int i = 0; i < outs.Length && i < args.Length; i++)
            {
                if (targetMethod.GetParameters()[i].ParameterType.IsByRef)
                {
                    args[i] = outs[i];
                }
            }
        }

        return response.ReferenceId != 0 ? Create(Server, response.ReferenceId, response.ReferenceInterface!, counted: true) : response.Value;
    }

    /// <summary>Names the interface and the server, not the remote object's contents.</summary>
    public override string ToString() => $"<Proxy[{Interface?.Name}] object {ObjectId} at {Platform.ListeningSockets.Describe(Server.EndPoint)}>";
}

/// <summary>A proxy crosses as a reference to its object: the server's address, the auth key, the id and the interface.</summary>
internal sealed class ManagerProxyConverter : ObjectConverter<ManagerProxy>
{
    internal override Type? WireType => typeof(ManagerProxy);

    public override void Write(ObjectWriter writer, ManagerProxy value) => WriteReference(writer, value.Server, value.ObjectId, value.Interface);

    public override ManagerProxy Read(ref ObjectReader reader)
    {
        (ServerAddress server, long id, Type interfaceType) = ReadReference(ref reader);
        if (!interfaceType.IsInterface)
        {
            throw new System.Runtime.Serialization.SerializationException($"A manager proxy must be for an interface, not {interfaceType}.");
        }

        // A proxy to a server in this very process (one stored in a shared list, say) is counted at once: it may be
        // the only thing keeping its object. Elsewhere the first call counts it.
        return (ManagerProxy)ManagerProxy.Create(server, id, interfaceType, counted: ManagerServer.TryAddLocalReference(server, id));
    }

    public static void WriteReference(ObjectWriter writer, ServerAddress server, long id, Type interfaceType)
    {
        (int family, byte[] bytes) = server.Encode();
        writer.WriteInt32(family);
        writer.WriteBytes(bytes);
        writer.WriteBytes(server.AuthKey);
        writer.WriteInt64(id);
        writer.WriteValue(interfaceType);
    }

    public static (ServerAddress Server, long Id, Type Interface) ReadReference(ref ObjectReader reader)
    {
        int family = reader.ReadInt32();
        byte[] bytes = reader.ReadBytes();
        byte[] key = reader.ReadBytes();
        long id = reader.ReadInt64();
        Type interfaceType = reader.ReadValue<Type>();
        return (new ServerAddress(ServerAddress.Decode(family, bytes), key), id, interfaceType);
    }

    /// <summary>Provides this converter for every generated proxy type, and for the wire type itself.</summary>
    public static ObjectConverter? Provide(Type type) => typeof(ManagerProxy).IsAssignableFrom(type) ? new ManagerProxyConverter() : null;
}

/// <summary>
/// References let go by collected proxies, waiting to reach their servers: each goes with the next request this process
/// sends to that server (no thread, no extra round trip); one to a server in this process is dropped at once.
/// </summary>
internal static class ReferenceReleases
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Collections.Concurrent.ConcurrentQueue<long>> s_pending = new(StringComparer.Ordinal);

    /// <summary>Queues one reference to <paramref name="id"/> for release (from a finalizer: never blocks).</summary>
    public static void Release(ServerAddress server, long id)
    {
        if (!ManagerServer.TryReleaseLocal(server, id))
        {
            s_pending.GetOrAdd(server.Key, static _ => new()).Enqueue(id);
        }
    }

    /// <summary>The releases waiting for <paramref name="server"/>, taken; null when none (the usual case, without allocating).</summary>
    public static long[]? Take(ServerAddress server)
    {
        if (!s_pending.TryGetValue(server.Key, out System.Collections.Concurrent.ConcurrentQueue<long>? queue) || queue.IsEmpty)
        {
            return null;
        }

        var ids = new List<long>();
        while (queue.TryDequeue(out long id))
        {
            ids.Add(id);
        }

        return ids.Count == 0 ? null : [.. ids];
    }

    /// <summary>Forgets what waits for a server that stopped.</summary>
    public static void Forget(ServerAddress server) => s_pending.TryRemove(server.Key, out _);
}
