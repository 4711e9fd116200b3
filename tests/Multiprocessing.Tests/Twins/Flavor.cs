using System.Net;
using System.Runtime.InteropServices;
using D = Multiprocessing.Dummy;
using mp = Multiprocessing;

namespace Multiprocessing.Tests.Twins;

/// <summary>A started process or thread, seen through what both kinds have.</summary>
public interface IWorker : IDisposable
{
    /// <summary>The process object itself (what <c>Connection.Wait</c> takes).</summary>
    object Process { get; }

    SafeHandle Sentinel { get; }

    void Start();

    bool Join(TimeSpan timeout);

    int? ExitCode { get; }

    RemoteException? Error { get; }

    bool IsAlive { get; }
}

/// <summary>
/// Makes the objects of one namespace — <c>Multiprocessing</c> or <c>Multiprocessing.Dummy</c> — behind the interfaces
/// both implement, so one behavioural test runs against both twins. Bodies passed to <see cref="Start"/> must capture
/// only locals (they cross to a child process in the process flavour).
/// </summary>
public interface IFlavor
{
    ILock Lock();

    ILock RLock();

    ISemaphore Semaphore(int initial);

    ISemaphore BoundedSemaphore(int initial);

    IEvent Event();

    ICondition Condition(ILock? lk = null);

    IBarrier Barrier(int parties, Action? action = null, TimeSpan? timeout = null);

    (IConnection First, IConnection Second) Pipe(bool duplex = true);

    ISharedValue<int> Value(int initial);

    ISharedArray<int> Array(int length);

    IQueue<int> Queue(int maxSize = 0);

    IJoinableQueue<int> JoinableQueue();

    IWorker Start(Action body);

    /// <summary>A process object for <paramref name="body"/>, not started yet.</summary>
    IWorker Create(Action body);

    /// <summary>The namespace's <c>Connection.Wait</c>.</summary>
    IReadOnlyList<object> Wait(IEnumerable<object> items, TimeSpan? timeout = null);

    /// <summary>Starts a manager and hands back what it makes as delegates; dispose the result to shut it down.</summary>
    IDisposable Manager(out Func<IEnumerable<int>, IList<int>> list, out Func<IDictionary<string, int>> dictionary, out Func<dynamic> ns, out Func<ILock> lk);

    /// <summary>A started manager server on <paramref name="address"/> serving <paramref name="queue"/> as <paramref name="name"/>; dispose it to stop it.</summary>
    IDisposable ManagerServer(EndPoint address, byte[] key, string name, IQueue<int> queue, out EndPoint bound);

    /// <summary>Connects to a manager server, gets its queue <c>name</c> and puts an item; captures nothing, so it can cross to a child.</summary>
    Action<EndPoint, byte[], string, int> RemotePut { get; }

    /// <summary>A manager without a server (<c>new Manager()</c>), and what it is asked that only a server can do.</summary>
    (IDisposable Manager, Action Serve, Action Start, Action RegisterNamed, Action GetMissing, Action CreateUnregistered, Action RegisterClass) LocalManager();

    IReadOnlyList<int> Map(Func<int, int> func, IEnumerable<int> items);

    int Apply(Func<int> func);
}

internal sealed class ProcessFlavor : IFlavor
{
    public ILock Lock() => new mp.Lock();

    public ILock RLock() => new mp.RLock();

    public ISemaphore Semaphore(int initial) => new mp.Semaphore(initial);

    public ISemaphore BoundedSemaphore(int initial) => new mp.BoundedSemaphore(initial);

    public IEvent Event() => new mp.Event();

    public ICondition Condition(ILock? lk = null) => new mp.Condition(lk);

    public IBarrier Barrier(int parties, Action? action = null, TimeSpan? timeout = null) => new mp.Barrier(parties, action, timeout);

    public (IConnection First, IConnection Second) Pipe(bool duplex = true) => mp.Pipe.Create(duplex);

    public ISharedValue<int> Value(int initial) => new mp.SharedValue<int>(initial);

    public ISharedArray<int> Array(int length) => new mp.SharedArray<int>(length);

    public IQueue<int> Queue(int maxSize = 0) => new mp.Queue<int>(maxSize);

    public IJoinableQueue<int> JoinableQueue() => new mp.JoinableQueue<int>();

    public IDisposable Manager(out Func<IEnumerable<int>, IList<int>> list, out Func<IDictionary<string, int>> dictionary, out Func<dynamic> ns, out Func<ILock> lk)
    {
        var manager = new mp.Manager();
        list = items => manager.List(items);
        dictionary = manager.Dictionary<string, int>;
        ns = manager.Namespace;
        lk = manager.Lock;
        return manager;
    }

    public IWorker Start(Action body)
    {
        IWorker worker = Create(body);
        worker.Start();
        return worker;
    }

    public IWorker Create(Action body) => new Worker(new mp.Process(body));

    public IReadOnlyList<object> Wait(IEnumerable<object> items, TimeSpan? timeout = null) => mp.Connection.Wait(items, timeout);

    public IDisposable ManagerServer(EndPoint address, byte[] key, string name, IQueue<int> queue, out EndPoint bound)
    {
        var server = new mp.Manager(address, key);
        server.Register(name, () => queue);
        server.Start();
        bound = server.Address;
        return server;
    }

    public Action<EndPoint, byte[], string, int> RemotePut { get; } = static (address, key, name, item) =>
    {
        using mp.Manager client = mp.Manager.Connect(address, key);
        client.Get<IQueue<int>>(name).Put(item);
    };

    public (IDisposable Manager, Action Serve, Action Start, Action RegisterNamed, Action GetMissing, Action CreateUnregistered, Action RegisterClass) LocalManager()
    {
        var manager = new mp.Manager();
        return (manager, () => manager.Serve(), manager.Start, () => manager.Register<ILock>("lock", manager.Lock), () => manager.Get<ILock>("nothing"), () => manager.Create<IComparable>(), () => manager.Register(() => new mp.Lock()));
    }

    public IReadOnlyList<int> Map(Func<int, int> func, IEnumerable<int> items)
    {
        using var pool = new mp.Pool(2);
        return pool.Map(func, items);
    }

    public int Apply(Func<int> func)
    {
        using var pool = new mp.Pool(1);
        return pool.Apply(func);
    }

    private sealed class Worker(mp.Process process) : IWorker
    {
        public object Process => process;

        public SafeHandle Sentinel => process.Sentinel;

        public void Start() => process.Start();

        public void Dispose() => process.Dispose();

        public int? ExitCode => process.ExitCode;

        public RemoteException? Error => process.Error;

        public bool IsAlive => process.IsAlive;

        public bool Join(TimeSpan timeout) => process.Join(timeout);
    }
}

internal sealed class DummyFlavor : IFlavor
{
    public ILock Lock() => new D.Lock();

    public ILock RLock() => new D.RLock();

    public ISemaphore Semaphore(int initial) => new D.Semaphore(initial);

    public ISemaphore BoundedSemaphore(int initial) => new D.BoundedSemaphore(initial);

    public IEvent Event() => new D.Event();

    public ICondition Condition(ILock? lk = null) => new D.Condition(lk);

    public IBarrier Barrier(int parties, Action? action = null, TimeSpan? timeout = null) => new D.Barrier(parties, action, timeout);

    public (IConnection First, IConnection Second) Pipe(bool duplex = true) => D.Pipe.Create(duplex);

    public ISharedValue<int> Value(int initial) => new D.SharedValue<int>(initial);

    public ISharedArray<int> Array(int length) => new D.SharedArray<int>(length);

    public IQueue<int> Queue(int maxSize = 0) => new D.Queue<int>(maxSize);

    public IJoinableQueue<int> JoinableQueue() => new D.JoinableQueue<int>();

    public IDisposable Manager(out Func<IEnumerable<int>, IList<int>> list, out Func<IDictionary<string, int>> dictionary, out Func<dynamic> ns, out Func<ILock> lk)
    {
        var manager = new D.Manager();
        list = items => manager.List(items);
        dictionary = manager.Dictionary<string, int>;
        ns = manager.Namespace;
        lk = manager.Lock;
        return manager;
    }

    public IWorker Start(Action body)
    {
        IWorker worker = Create(body);
        worker.Start();
        return worker;
    }

    public IWorker Create(Action body) => new Worker(new D.Process(body));

    public IReadOnlyList<object> Wait(IEnumerable<object> items, TimeSpan? timeout = null) => D.Connection.Wait(items, timeout);

    public IDisposable ManagerServer(EndPoint address, byte[] key, string name, IQueue<int> queue, out EndPoint bound)
    {
        var server = new D.Manager(address, key);
        server.Register(name, () => queue);
        server.Start();
        bound = server.Address;
        return server;
    }

    public Action<EndPoint, byte[], string, int> RemotePut { get; } = static (address, key, name, item) =>
    {
        using D.Manager client = D.Manager.Connect(address, key);
        client.Get<IQueue<int>>(name).Put(item);
    };

    public (IDisposable Manager, Action Serve, Action Start, Action RegisterNamed, Action GetMissing, Action CreateUnregistered, Action RegisterClass) LocalManager()
    {
        var manager = new D.Manager();
        return (manager, () => manager.Serve(), manager.Start, () => manager.Register<ILock>("lock", manager.Lock), () => manager.Get<ILock>("nothing"), () => manager.Create<IComparable>(), () => manager.Register(() => new D.Lock()));
    }

    public IReadOnlyList<int> Map(Func<int, int> func, IEnumerable<int> items)
    {
        using var pool = new D.Pool(2);
        return pool.Map(func, items);
    }

    public int Apply(Func<int> func)
    {
        using var pool = new D.Pool(1);
        return pool.Apply(func);
    }

    private sealed class Worker(D.Process process) : IWorker
    {
        public object Process => process;

        public SafeHandle Sentinel => process.Sentinel;

        public void Start() => process.Start();

        public void Dispose() => process.Dispose();

        public int? ExitCode => process.ExitCode;

        public RemoteException? Error => process.Error;

        public bool IsAlive => process.IsAlive;

        public bool Join(TimeSpan timeout) => process.Join(timeout);
    }
}
