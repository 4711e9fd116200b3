using System.Runtime.InteropServices;
using D = Multiprocessing.Dummy;
using Multiprocessing;
using mp = Multiprocessing;

namespace Tour;

/// <summary>
/// One program run twice: on processes (<c>Multiprocessing</c>) and on threads (<c>Multiprocessing.Dummy</c>). In an
/// application the switch is one line, <c>using mp = Multiprocessing.Dummy;</c>; here both run side by side, so the
/// body is written once against the interfaces both namespaces implement and handed the constructors of each.
/// </summary>
internal static class DummyExamples
{
    public static void Run()
    {
        Section("The same program on processes and on threads (using mp = Multiprocessing.Dummy;)");
        Demo(
            "processes",
            () => mp.Pipe.Create(),
            body =>
            {
                var p = new mp.Process(body);
                p.Start();
                return (() => p.Join(), () => p.Sentinel);
            },
            (func, items) =>
            {
                using var pool = new mp.Pool(2);
                return pool.Map(func, items);
            },
            initial => new mp.SharedValue<int>(initial),
            mp.Connection.Wait);
        Demo(
            "threads",
            () => D.Pipe.Create(),
            body =>
            {
                var p = new D.Process(body);
                p.Start();
                return (() => p.Join(), () => p.Sentinel);
            },
            (func, items) =>
            {
                using var pool = new D.Pool(2);
                return pool.Map(func, items);
            },
            initial => new D.SharedValue<int>(initial),
            D.Connection.Wait);

        Section("A thread manager serving other processes: new Manager(address, authKey), Register, Start, as on processes");
        byte[] authKey = "abracadabra"u8.ToArray();
        var queue = new D.Queue<string>();
        using var server = new D.Manager(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0), authKey);
        server.Register<IQueue<string>>("get_queue", () => queue);
        server.Start();
        Console.WriteLine($"this process's threads get the queue itself: {ReferenceEquals(queue, server.Get<IQueue<string>>("get_queue"))}");
        mp.Process client = RemotePutter(server.Address, authKey);
        client.Start();
        client.Join();
        Console.WriteLine($"the thread queue received: {queue.Get(TimeSpan.FromSeconds(30))}");
    }

    /// <summary>A child process that connects to a manager server and puts into its queue (apart, so its closure holds only these).</summary>
    private static mp.Process RemotePutter(System.Net.EndPoint address, byte[] authKey) => new(() =>
    {
        using mp.Manager m = mp.Manager.Connect(address, authKey);
        m.Get<IQueue<string>>("get_queue").Put($"hello from process {Environment.ProcessId}");
    });

    private static int Square(int x) => x * x;

    /// <summary>
    /// The program: a pool maps, a worker answers over a pipe (waited for with <c>Connection.Wait</c> beside the
    /// worker's sentinel), four workers count into a shared value under its lock.
    /// </summary>
    private static void Demo(
        string label,
        Func<(IConnection, IConnection)> pipe,
        Func<Action, (Action Join, Func<SafeHandle> Sentinel)> start,
        Func<Func<int, int>, int[], IReadOnlyList<int>> map,
        Func<int, ISharedValue<int>> value,
        Func<IEnumerable<object>, TimeSpan?, IReadOnlyList<object>> wait)
    {
        Console.WriteLine($"-- on {label}");
        Console.WriteLine($"squares: [{string.Join(", ", map(Square, [1, 2, 3, 4, 5]))}]");

        (IConnection parent, IConnection child) = pipe();
        (Action join, Func<SafeHandle> sentinel) = start(() => child.Send($"hello {child.Recv<string>()}"));
        parent.Send("bob");
        IReadOnlyList<object> ready = wait([parent, sentinel()], null); // whichever comes first: the answer or the worker's end
        Console.WriteLine($"ready: {(ready.Contains(parent) ? "the answer" : "only the worker's end")}");
        Console.WriteLine(parent.Recv<string>());
        join();
        Console.WriteLine($"the worker's sentinel is ready once it is joined: {wait([sentinel()], TimeSpan.Zero).Count == 1}");

        ISharedValue<int> counter = value(0);
        Action[] joins = [.. Enumerable.Range(0, 4).Select(_ => start(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                using (counter.GetLock().EnterScope())
                {
                    counter.Value++;
                }
            }
        }).Join)];
        foreach (Action j in joins)
        {
            j();
        }

        Console.WriteLine($"counter: {counter.Value}");
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
