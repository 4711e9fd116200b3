using System.Net;
using Multiprocessing.Managers;

namespace Multiprocessing;

/// <summary>
/// Shares objects through a server process (Python's <c>multiprocessing.Manager()</c>): the objects live in the
/// server and every process uses them through proxies, whose every call runs on the server. Proxies can be handed to
/// child processes and sent through pipes; they reconnect with the manager's auth key.
/// </summary>
/// <remarks>
/// <para><c>new Manager()</c> starts a local server process, which exits when the manager is disposed or its owner dies.</para>
/// <para><c>new Manager(address, authKey)</c> makes a server for other machines, run with <see cref="Serve"/> or
/// <see cref="Start"/> in this process; <see cref="Connect"/> reaches one, and <see cref="Get{TInterface}"/> fetches what it
/// registered by name.</para>
/// </remarks>
public sealed class Manager : IDisposable
{
    private readonly Process? _serverProcess;
    private readonly Connection? _ownerLine;
    private readonly ManagerServer? _server;
    private readonly ServerAddress _address;
    private Thread? _serveThread;
    private bool _disposed;

    /// <summary>Starts a manager's server process and connects to it.</summary>
    /// <exception cref="ProcessException">The server process did not start.</exception>
    public Manager()
    {
        (Connection ours, Connection theirs) = Pipe.Create();
        var server = new Process<Connection>(ManagerServer.RunInChild, theirs, name: "SyncManager", daemon: true);
        try
        {
            server.Start();
            theirs.Dispose();
            if (!ours.Poll(TimeSpan.FromSeconds(60)))
            {
                throw new ProcessException("The manager's server process did not report its address within 60 s.");
            }

            (int family, byte[] bytes, byte[] key) = ours.Recv<(int, byte[], byte[])>();
            _address = new ServerAddress(ServerAddress.Decode(family, bytes), key);
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException)
        {
            server.Join(TimeSpan.FromSeconds(10));
            ours.Dispose();
            throw new ProcessException($"The manager's server process ended before it was ready (exit code {server.ExitCode}): {server.Error?.Message ?? ex.Message}", server.ExitCode);
        }
        catch
        {
            ours.Dispose();
            theirs.Dispose();
            if (server.Pid is not null)
            {
                try
                {
                    server.Kill();
                }
                catch (InvalidOperationException)
                {
                    // already ended: the original exception is what matters
                }
            }

            throw;
        }

        _serverProcess = server;
        _ownerLine = ours;
    }

    /// <summary>
    /// Makes a manager server for <paramref name="address"/> (TCP, loopback unless you choose otherwise, or a Unix
    /// socket) that clients must prove <paramref name="authKey"/> to; register named objects, then <see cref="Serve"/> or <see cref="Start"/>.
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
        _address = _server.Address;
    }

    private Manager(ServerAddress address) => _address = address;

    /// <summary>Connects to a manager server started elsewhere (Python's <c>BaseManager(address, authkey).connect()</c>).</summary>
    /// <exception cref="System.Security.Authentication.AuthenticationException">The key is wrong.</exception>
    /// <exception cref="IOException">Nothing answers at <paramref name="address"/>.</exception>
    public static Manager Connect(EndPoint address, byte[] authKey)
    {
        ArgumentNullException.ThrowIfNull(address);
        ArgumentNullException.ThrowIfNull(authKey);
        var manager = new Manager(new ServerAddress(address, authKey));
        ManagerClient.CallChecked(manager._address, new ManagerRequest { Kind = RequestKind.Ping });
        return manager;
    }

    /// <summary>The address clients reach the server at.</summary>
    public EndPoint Address => _address.EndPoint;

    /// <summary>The server process of a local manager (null for remote ones).</summary>
    public Process? ServerProcess => _serverProcess;

    /// <summary>A list kept by the server, optionally filled with <paramref name="items"/>.</summary>
    public ListProxy<T> List<T>(IEnumerable<T>? items = null)
        => new(CreateBuiltin<IListOperations<T>>(items is null ? null : [items.ToArray()]));

    /// <summary>A dictionary kept by the server.</summary>
    public IDictionary<TKey, TValue> Dictionary<TKey, TValue>()
        where TKey : notnull
        => new DictionaryProxy<TKey, TValue>(CreateBuiltin<IDictionaryOperations<TKey, TValue>>(null));

    /// <summary>An attribute bag kept by the server (<c>ns.X = 10</c>; another process reads <c>ns.X</c>).</summary>
    public dynamic Namespace() => new NamespaceProxy(CreateBuiltin<INamespaceOperations>(null));

    /// <summary>A lock kept by the server (Python's <c>manager.Lock()</c>): any process or thread may release it.</summary>
    public ILock Lock() => CreateSynchronization<ILock>("Lock");

    /// <summary>A recursive lock kept by the server, owned by the calling thread of the calling process.</summary>
    public ILock RLock() => CreateSynchronization<ILock>("RLock");

    /// <summary>A semaphore kept by the server.</summary>
    public ISemaphore Semaphore(int initial = 1) => CreateSynchronization<ISemaphore>("Semaphore", ValidateInitial(initial));

    /// <summary>A bounded semaphore kept by the server: releasing past its start value is an error.</summary>
    public ISemaphore BoundedSemaphore(int initial = 1) => CreateSynchronization<ISemaphore>("BoundedSemaphore", ValidateInitial(initial));

    /// <summary>A condition variable (over a recursive lock) kept by the server.</summary>
    public ICondition Condition() => CreateSynchronization<ICondition>("Condition");

    /// <summary>An event kept by the server.</summary>
    public IEvent Event() => CreateSynchronization<IEvent>("Event");

    /// <summary>A barrier for <paramref name="parties"/> kept by the server.</summary>
    public IBarrier Barrier(int parties)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(parties, 1);
        return CreateSynchronization<IBarrier>("Barrier", parties);
    }

    /// <summary>A queue kept by the server (Python's <c>manager.Queue(maxsize)</c>); 0 means unbounded.</summary>
    public IQueue<T> Queue<T>(int maxSize = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        return CreateBuiltin<IQueue<T>>([maxSize]);
    }

    /// <summary>A joinable queue kept by the server (Python's <c>manager.JoinableQueue()</c>).</summary>
    public IJoinableQueue<T> JoinableQueue<T>(int maxSize = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxSize);
        return CreateBuiltin<IJoinableQueue<T>>([maxSize]);
    }

    /// <summary>A value kept by the server (Python's <c>manager.Value</c>), with its lock.</summary>
    public ISharedValue<T> Value<T>(T initial = default)
        where T : unmanaged
        => CreateBuiltin<ISharedValue<T>>([initial]);

    /// <summary>A zero-filled array of <paramref name="length"/> elements kept by the server (Python's <c>manager.Array</c>).</summary>
    public ISharedArray<T> Array<T>(int length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        return CreateBuiltin<ISharedArray<T>>([length]);
    }

    private static int ValidateInitial(int initial)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initial);
        return initial;
    }

    private TInterface CreateSynchronization<TInterface>(string kind, params object?[] arguments)
        where TInterface : class
    {
        ManagerResponse response = ManagerClient.CallChecked(_address, new ManagerRequest
        {
            Kind = RequestKind.Create,
            Interface = typeof(TInterface),
            Name = kind,
            Arguments = arguments,
        });
        return (TInterface)ManagerProxy.Create(_address, response.ReferenceId, typeof(TInterface), counted: true);
    }

    /// <summary>Registers a shared type: <see cref="Create{TInterface}"/> then makes one in the server with <paramref name="factory"/>.</summary>
    /// <typeparam name="TInterface">The interface proxies implement; only its members can be called.</typeparam>
    /// <param name="factory">Runs in the server; it must be able to cross there (a lambda may capture values).</param>
    public void Register<TInterface>(Func<TInterface> factory)
        where TInterface : class
    {
        ArgumentNullException.ThrowIfNull(factory);
        RequireInterface(typeof(TInterface));
        if (_server is not null)
        {
            _server.RegisterNamed(typeof(TInterface).FullName!, typeof(TInterface), factory);
            return;
        }

        ManagerClient.CallChecked(_address, new ManagerRequest { Kind = RequestKind.Register, Interface = typeof(TInterface), Factory = factory });
    }

    /// <summary>Registers an object clients fetch by <paramref name="name"/> with <see cref="Get{TInterface}"/> (a remote manager's server side).</summary>
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

        _server.RegisterNamed(name, typeof(TInterface), factory);
    }

    /// <summary>Makes a new shared object of a registered type in the server and returns its proxy.</summary>
    public TInterface Create<TInterface>()
        where TInterface : class
    {
        RequireInterface(typeof(TInterface));
        ManagerResponse response = ManagerClient.CallChecked(_address, new ManagerRequest { Kind = RequestKind.Create, Interface = typeof(TInterface) });
        return (TInterface)ManagerProxy.Create(_address, response.ReferenceId, typeof(TInterface), counted: true);
    }

    /// <summary>The object the server registered under <paramref name="name"/>, as a proxy.</summary>
    /// <exception cref="RemoteException">Nothing is registered under that name, or not as <typeparamref name="TInterface"/>.</exception>
    public TInterface Get<TInterface>(string name)
        where TInterface : class
    {
        ArgumentNullException.ThrowIfNull(name);
        RequireInterface(typeof(TInterface));
        ManagerResponse response = ManagerClient.CallChecked(_address, new ManagerRequest { Kind = RequestKind.Get, Name = name, Interface = typeof(TInterface) });
        return (TInterface)ManagerProxy.Create(_address, response.ReferenceId, typeof(TInterface), counted: true);
    }

    /// <summary>Runs the server in this thread until <paramref name="cancellationToken"/> fires or <see cref="Shutdown"/> (Python's <c>serve_forever</c>).</summary>
    public void Serve(CancellationToken cancellationToken = default)
        => (_server ?? throw new InvalidOperationException("Only a manager server (new Manager(address, authKey)) serves.")).Serve(cancellationToken);

    /// <summary>Runs the server on a background thread of this process.</summary>
    public void Start()
    {
        ManagerServer server = _server ?? throw new InvalidOperationException("Only a manager server (new Manager(address, authKey)) can be started; new Manager() starts its own.");
        if (_serveThread is not null)
        {
            throw new InvalidOperationException("The manager server is already started.");
        }

        _serveThread = new Thread(() => server.Serve()) { IsBackground = true, Name = "Multiprocessing manager server" };
        _serveThread.Start();
    }

    /// <summary>Stops the server: its proxies' next calls fail with <see cref="IOException"/>. A client only disconnects.</summary>
    public void Shutdown()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        if (_server is not null)
        {
            _server.Stop();
            _serveThread?.Join(TimeSpan.FromSeconds(10));
        }
        else if (_serverProcess is not null)
        {
            _ownerLine!.Dispose(); // the server stops when its owner hangs up
            if (!_serverProcess.Join(TimeSpan.FromSeconds(10)))
            {
                _serverProcess.Kill();
                _serverProcess.Join(TimeSpan.FromSeconds(10));
            }

            _serverProcess.Dispose();
        }

        ManagerClient.Forget(_address);
        if (_server is not null || _serverProcess is not null)
        {
            ReferenceReleases.Forget(_address);
        }
    }

    /// <summary>How many objects the server keeps now (tests watch reference counting with it); <paramref name="collect"/> runs the server's GC first.</summary>
    internal int ServerObjectCount(bool collect = false)
        => (int)ManagerClient.CallChecked(_address, new ManagerRequest { Kind = RequestKind.Stats, Name = collect ? "collect" : null }).Value!;

    /// <summary>Same as <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();

    private TOperations CreateBuiltin<TOperations>(object?[]? arguments)
        where TOperations : class
    {
        ManagerResponse response = ManagerClient.CallChecked(_address, new ManagerRequest
        {
            Kind = RequestKind.Create,
            Interface = typeof(TOperations),
            Arguments = arguments,
        });
        return (TOperations)ManagerProxy.Create(_address, response.ReferenceId, typeof(TOperations), counted: true);
    }

    private static void RequireInterface(Type type)
    {
        if (!type.IsInterface)
        {
            throw new ArgumentException($"{type.FullName} is not an interface: shared types are used through an interface, which the proxy implements.", nameof(type));
        }
    }
}
