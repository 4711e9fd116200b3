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
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
