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
                return () => p.Join();
            },
            (func, items) =>
            {
                using var pool = new mp.Pool(2);
                return pool.Map(func, items);
            },
            initial => new mp.SharedValue<int>(initial));
        Demo(
            "threads",
            () => D.Pipe.Create(),
            body =>
            {
                var p = new D.Process(body);
                p.Start();
                return () => p.Join();
            },
            (func, items) =>
            {
                using var pool = new D.Pool(2);
                return pool.Map(func, items);
            },
            initial => new D.SharedValue<int>(initial));
    }

    private static int Square(int x) => x * x;

    /// <summary>The program: a pool maps, a worker answers over a pipe, four workers count into a shared value under its lock.</summary>
    private static void Demo(
        string label,
        Func<(IConnection, IConnection)> pipe,
        Func<Action, Action> start,
        Func<Func<int, int>, int[], IReadOnlyList<int>> map,
        Func<int, ISharedValue<int>> value)
    {
        Console.WriteLine($"-- on {label}");
        Console.WriteLine($"squares: [{string.Join(", ", map(Square, [1, 2, 3, 4, 5]))}]");

        (IConnection parent, IConnection child) = pipe();
        Action join = start(() => child.Send($"hello {child.Recv<string>()}"));
        parent.Send("bob");
        Console.WriteLine(parent.Recv<string>());
        join();

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
        }))];
        foreach (Action j in joins)
        {
            j();
        }

        Console.WriteLine($"counter: {counter.Value}");
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
