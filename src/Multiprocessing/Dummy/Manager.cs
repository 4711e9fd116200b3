using System.Collections.Concurrent;
using System.Dynamic;
using System.Net;
using Multiprocessing.Managers;

namespace Multiprocessing.Dummy;

/// <summary>
/// Python's <c>multiprocessing.dummy.Manager</c>: the same members as <see cref="Multiprocessing.Manager"/>, with the
/// thread objects themselves in place of proxies (a <see cref="ListProxy{T}"/>, a concurrent dictionary, a dynamic
/// namespace, Dummy locks, queues and values), shared by reference.
/// </summary>
/// <remarks>
/// <para><c>new Manager()</c> has no server: it only makes thread objects.</para>
/// <para><c>new Manager(address, authKey)</c> is also a manager server for other processes, run with <see cref="Serve"/>
/// or <see cref="Start"/> on a thread of this process, exactly as the process manager's is: what is registered by name
/// is served to clients through proxies, while this process's threads get the objects themselves.</para>
/// <para><see cref="Connect"/> reaches a manager server elsewhere; what it makes or gets lives in that server, and the
/// calling threads use it through proxies, as a process would (a server is in another process by nature).</para>
/// </remarks>
public sealed class Manager : IDisposable
{
    private readonly ConcurrentDictionary<Type, Func<object?>> _types = new();
    private readonly ConcurrentDictionary<string, (Type Interface, Func<object?> Factory)> _named = new(StringComparer.Ordinal);
    private readonly ManagerServer? _server;
    private readonly Multiprocessing.Manager? _remote;
    private readonly object _gate = new();
    private Thread? _serveThread;
    private bool _shutDown;

    /// <summary>Makes a manager of thread objects (no server, nothing to start).</summary>
    public Manager()
    {
    }

    /// <summary>
    /// Makes a manager that is also a server for <paramref name="address"/> (TCP, loopback unless you choose otherwise,
    /// or a Unix socket) that clients must prove <paramref name="authKey"/> to; register named objects, then
    /// <see cref="Serve"/> or <see cref="Start"/>.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="authKey"/> is empty.</exception>
    public Manager(EndPoint address, byte[] authKey)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(authKey);
        if (authKey.Length == 0)
        {
            throw new ArgumentException("A manager server needs a non-empty auth key.", nameof(authKey));
        }

        _server = new ManagerServer(address, authKey);
    }

    private Manager(Multiprocessing.Manager remote) => _remote = remote;

    /// <summary>Connects to a manager server started elsewhere (Python's <c>BaseManager(address, authkey).connect()</c>): the process manager's client, under this namespace's name.</summary>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The key is wrong.</exception>
    /// <exception cref="IOException">Nothing answers at <paramref name="address"/>.</exception>
    public static Manager Connect(EndPoint address, byte[] authKey) => new(Multiprocessing.Manager.Connect(address, authKey));

    /// <summary>The address clients reach the server at.</summary>
    /// <exception cref="InvalidOperationException">This manager has no server (<c>new Manager()</c> on threads).</exception>
    public EndPoint Address => _remote?.Address ?? _server?.Address.EndPoint
        ?? throw new InvalidOperationException("A thread manager made with new Manager() has no server, so no address; new Manager(address, authKey) makes one that serves other processes.");

    /// <summary>No server process on threads: always null.</summary>
#pragma warning disable CA1822 // an instance member, as on the process Manager, so a program can switch namespaces
    public Process? ServerProcess => null;
#pragma warning restore CA1822

    /// <summary>A new list holding <paramref name="items"/>.</summary>
    public ListProxy<T> List<T>(IEnumerable<T>? items = null) => _remote is { } remote ? new(remote.List(items)) : new(items);

    /// <summary>A new dictionary, safe to use from several threads.</summary>
    public IDictionary<TKey, TValue> Dictionary<TKey, TValue>()
        where TKey : notnull
        => _remote?.Dictionary<TKey, TValue>() ?? new ConcurrentDictionary<TKey, TValue>();

    /// <summary>A new namespace: set and read any member (<c>ns.x = 1</c>).</summary>
    public dynamic Namespace() => _remote is { } remote ? remote.Namespace() : new ExpandoObject();

    /// <summary>A new <see cref="Dummy.Lock"/>.</summary>
    public ILock Lock() => _remote?.Lock() ?? new Lock();

    /// <summary>A new <see cref="Dummy.RLock"/>.</summary>
    public ILock RLock() => _remote?.RLock() ?? new RLock();

    /// <summary>A new <see cref="Dummy.Semaphore"/>.</summary>
    public ISemaphore Semaphore(int initial = 1) => _remote?.Semaphore(initial) ?? new Semaphore(initial);

    /// <summary>A new <see cref="Dummy.BoundedSemaphore"/>.</summary>
    public ISemaphore BoundedSemaphore(int initial = 1) => _remote?.BoundedSemaphore(initial) ?? new BoundedSemaphore(initial);

    /// <summary>A new <see cref="Dummy.Condition"/> over a new RLock.</summary>
    public ICondition Condition() => _remote?.Condition() ?? new Condition();

    /// <summary>A new <see cref="Dummy.Event"/>.</summary>
    public IEvent Event() => _remote?.Event() ?? new Event();

    /// <summary>A new <see cref="Dummy.Barrier"/> for <paramref name="parties"/>.</summary>
    public IBarrier Barrier(int parties) => _remote?.Barrier(parties) ?? new Barrier(parties);

    /// <summary>A new <see cref="Queue{T}"/>; <paramref name="maxSize"/> 0 is unbounded.</summary>
    public IQueue<T> Queue<T>(int maxSize = 0) => _remote?.Queue<T>(maxSize) ?? new Queue<T>(maxSize);

    /// <summary>A new <see cref="JoinableQueue{T}"/>.</summary>
    public IJoinableQueue<T> JoinableQueue<T>(int maxSize = 0) => _remote?.JoinableQueue<T>(maxSize) ?? new JoinableQueue<T>(maxSize);

    /// <summary>A new <see cref="SharedValue{T}"/>.</summary>
    public ISharedValue<T> Value<T>(T initial = default)
        where T : unmanaged
        => _remote?.Value(initial) ?? new SharedValue<T>(initial);

    /// <summary>A new <see cref="SharedArray{T}"/> of <paramref name="length"/> zeroes.</summary>
    public ISharedArray<T> Array<T>(int length)
        where T : unmanaged
        => _remote?.Array<T>(length) ?? new SharedArray<T>(length);

    /// <summary>Registers a shared type: <see cref="Create{TInterface}"/> then makes one with <paramref name="factory"/> (a server's clients can too).</summary>
    /// <typeparam name="TInterface">The interface the objects are used through (a process manager's proxies implement only that).</typeparam>
    /// <exception cref="ArgumentException"><typeparamref name="TInterface"/> is not an interface.</exception>
    public void Register<TInterface>(Func<TInterface> factory)
        where TInterface : class
    {
        ArgumentNullException.ThrowIfNull(factory);
        RequireInterface(typeof(TInterface));
        if (_remote is not null)
        {
            _remote.Register(factory);
            return;
        }

        _types[typeof(TInterface)] = factory;
        _server?.RegisterNamed(typeof(TInterface).FullName!, typeof(TInterface), factory);
    }

    /// <summary>
    /// Registers an object fetched by <paramref name="name"/> with <see cref="Get{TInterface}"/>: by this process's
    /// threads (the object itself) and by the server's clients (through proxies). <paramref name="factory"/> runs at
    /// each get, as on the process manager; return one object from it to share that object.
    /// </summary>
    /// <exception cref="InvalidOperationException">This manager is not a server (<c>new Manager(address, authKey)</c>).</exception>
    public void Register<TInterface>(string name, Func<TInterface> factory)
        where TInterface : class
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(factory);
        RequireInterface(typeof(TInterface));
        if (_server is null)
        {
            throw new InvalidOperationException("Named objects are registered on a manager server (new Manager(address, authKey)), before Serve or Start.");
        }

        _named[name] = (typeof(TInterface), factory);
        _server.RegisterNamed(name, typeof(TInterface), factory);
    }

    /// <summary>Makes a new object of a registered type.</summary>
    /// <exception cref="RemoteException"><typeparamref name="TInterface"/> was not registered (an <see cref="InvalidOperationException"/>, as the process manager's server reports it).</exception>
    public TInterface Create<TInterface>()
        where TInterface : class
    {
        RequireInterface(typeof(TInterface));
        if (_remote is not null)
        {
            return _remote.Create<TInterface>();
        }

        Func<object?> factory = _types.GetValueOrDefault(typeof(TInterface))
            ?? throw Failed(new InvalidOperationException($"No type is registered for {typeof(TInterface).FullName}: call Register<{typeof(TInterface).Name}>(factory) first."));
        return (TInterface)(factory() ?? throw Failed(new InvalidOperationException($"The factory registered for {typeof(TInterface).FullName} returned null.")));
    }

    /// <summary>The object registered under <paramref name="name"/>: the object itself, or a proxy from a server reached with <see cref="Connect"/>.</summary>
    /// <exception cref="RemoteException">Nothing is registered under that name, or not as <typeparamref name="TInterface"/> (as the process manager's server reports it).</exception>
    public TInterface Get<TInterface>(string name)
        where TInterface : class
    {
        ArgumentNullException.ThrowIfNull(name);
        RequireInterface(typeof(TInterface));
        if (_remote is not null)
        {
            return _remote.Get<TInterface>(name);
        }

        if (!_named.TryGetValue(name, out (Type Interface, Func<object?> Factory) entry))
        {
            throw Failed(new KeyNotFoundException($"The manager has nothing registered under the name '{name}'."));
        }

        if (!typeof(TInterface).IsAssignableFrom(entry.Interface))
        {
            throw Failed(new InvalidCastException($"'{name}' is registered as {entry.Interface.FullName}, not {typeof(TInterface).FullName}."));
        }

        return (TInterface)(entry.Factory() ?? throw Failed(new InvalidOperationException($"The factory registered as '{name}' returned null.")));
    }

    /// <summary>Runs the server in this thread until <paramref name="cancellationToken"/> fires or <see cref="Shutdown"/> (Python's <c>serve_forever</c>).</summary>
    /// <exception cref="InvalidOperationException">This manager is not a server.</exception>
    public void Serve(CancellationToken cancellationToken = default)
        => (_server ?? throw new InvalidOperationException("Only a manager server (new Manager(address, authKey)) serves.")).Serve(cancellationToken);

    /// <summary>Runs the server on a background thread of this process.</summary>
    /// <exception cref="InvalidOperationException">This manager is not a server, or it is already started.</exception>
    public void Start()
    {
        ManagerServer server = _server ?? throw new InvalidOperationException("Only a manager server (new Manager(address, authKey)) can be started; new Manager() needs no start.");
        lock (_gate)
        {
            if (_serveThread is not null)
            {
                throw new InvalidOperationException("The manager server is already started.");
            }

            _serveThread = new Thread(() => server.Serve()) { IsBackground = true, Name = "Multiprocessing manager server" };
            _serveThread.Start();
        }
    }

    /// <summary>Stops a server (its clients' next calls fail with <see cref="IOException"/>) or disconnects a client; thread objects stay usable.</summary>
    public void Shutdown()
    {
        lock (_gate)
        {
            if (_shutDown)
            {
                return;
            }

            _shutDown = true;
        }

        if (_server is not null)
        {
            _server.Stop();
            _serveThread?.Join(TimeSpan.FromSeconds(10));
        }

        _remote?.Shutdown();
    }

    /// <summary>As <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();

    /// <summary>A failure reported as the process manager's server reports it, so one <c>catch</c> serves both.</summary>
    private static RemoteException Failed(Exception error) => RemoteException.FromException(error);

    private static void RequireInterface(Type type)
    {
        if (!type.IsInterface)
        {
            throw new ArgumentException($"{type.FullName} is not an interface: shared types are used through an interface, which the proxy implements.", nameof(type));
        }
    }
}
