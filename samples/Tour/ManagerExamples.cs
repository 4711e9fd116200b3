using mp = Multiprocessing;

namespace Tour;

/// <summary>Python:  class Foo(object): def bar(self): print 'BAR'  — exposed through the interface it implements.</summary>
public interface IFoo
{
    /// <summary>Prints BAR in the manager's server process.</summary>
    void Bar();
}

/// <summary>The shared type; it lives in the manager's server.</summary>
public sealed class Foo : IFoo
{
    /// <inheritdoc/>
    public void Bar() => Console.WriteLine("BAR");
}

/// <summary>The seeds' manager examples.</summary>
internal static class ManagerExamples
{
    public static void Run()
    {
        Section("Managers: manager = Manager(); l = manager.list(range(10)); l.reverse(); print l");
        using var manager = new mp.Manager();
        mp.ListProxy<int> l = manager.List(Enumerable.Range(0, 10));
        l.Reverse();
        Console.WriteLine(l);
        var child = new mp.Process(() => l.Add(10));
        child.Start();
        child.Join();
        Console.WriteLine($"after a child appended: {l}");

        Section("Registering new shared types: NewManager.register('Foo', Foo, exposed=['bar']); foo = manager.Foo(); foo.bar()");
        manager.Register<IFoo>(() => new Foo());
        IFoo foo = manager.Create<IFoo>();
        foo.Bar(); // => prints 'BAR' (from the server process, whose output is this console too)

        Section("A Namespace: ns.x = 10 here, read and changed in a child");
        dynamic ns = manager.Namespace();
        ns.x = 10;
        object shared = ns;
        var reader = new mp.Process(() =>
        {
            dynamic remote = shared;
            remote.y = (int)remote.x * 2;
        });
        reader.Start();
        reader.Join();
        Console.WriteLine(ns);

        QueueThroughManager();
        RemoteQueue();
    }

    /// <summary>The seed's example: integers sent through a manager's queue from a child to its parent.</summary>
    public static void QueueThroughManager()
    {
        Section("manager = Manager(); queue = manager.Queue(maxsize=10); a child puts i*i, then 'STOP'");
        using var manager = new mp.Manager();
        mp.IQueue<object> queue = manager.Queue<object>(maxSize: 10);
        var p = new mp.Process<mp.IQueue<object>>(F, queue);
        p.Start();
        object? result = null;
        while (!Equals(result, "STOP"))
        {
            result = queue.Get();
            Console.WriteLine(result);
        }

        p.Join();
    }

    // Python:  def f(q): for i in range(10): q.put(i*i); q.put('STOP')
    private static void F(mp.IQueue<object> q)
    {
        for (int i = 0; i < 10; i++)
        {
            q.Put(i * i);
        }

        q.Put("STOP");
    }

    /// <summary>
    /// Python's documented remote queue: a server serves a queue under a name (here on loopback, in this process), and
    /// a client elsewhere (here a child process) connects with the auth key, puts, and the server side reads.
    /// </summary>
    public static void RemoteQueue()
    {
        Section("Remote managers: QueueManager.register('get_queue', callable=lambda: queue); m = QueueManager(address=('', 50000), authkey=b'abracadabra')");
        byte[] authKey = "abracadabra"u8.ToArray();
        var queue = new mp.Queue<string>();
        using var server = new mp.Manager(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), authKey);
        server.Register<mp.IQueue<string>>("get_queue", () => queue);
        server.Start(); // Python's s.serve_forever(), on a background thread
        System.Net.EndPoint address = server.Address;

        var client = new mp.Process(() =>
        {
            using mp.Manager m = mp.Manager.Connect(address, authKey);   // m = QueueManager(address=..., authkey=...); m.connect()
            mp.IQueue<string> remote = m.Get<mp.IQueue<string>>("get_queue");
            remote.Put("hello");
        });
        client.Start();
        client.Join();
        Console.WriteLine($"the server's queue received: {queue.Get(TimeSpan.FromSeconds(30))}");
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
