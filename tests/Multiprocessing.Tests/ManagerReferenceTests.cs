using System.Runtime.CompilerServices;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Reference counting: a manager drops an object once no proxy in any process holds it, as Python's decref.</summary>
public sealed class ManagerReferenceTests
{
    [Fact]
    public void Objects_whose_proxies_were_all_collected_leave_the_server()
    {
        using var manager = new mp.Manager();
        manager.Register<ICounter>(() => new Counter());
        ICounter kept = manager.Create<ICounter>();
        int before = manager.ServerObjectCount();

        MakeAndDrop(manager, 50);
        Collect();
        Assert.Equal(before, manager.ServerObjectCount()); // the releases went with this request
        Assert.Equal(1, kept.Increment()); // a proxy still held keeps its object
    }

    [Fact]
    public void A_proxy_stored_in_a_shared_list_keeps_its_object_after_the_creator_lets_go_and_a_child_counts_its_own()
    {
        using var manager = new mp.Manager();
        mp.ListProxy<IDictionary<string, int>> rows = manager.List<IDictionary<string, int>>();
        AddRow(manager, rows);
        Collect();
        int withRow = manager.ServerObjectCount();
        Assert.Equal(2, withRow); // the list, and the dictionary the server's copy of the proxy holds

        // A child gets the list, reads a row (a proxy it did not have a reference for) and writes through it.
        using var child = new mp.Process(() => rows[0]["child"] = 2);
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode); // the child's count ends with it
        Assert.Equal((2, 1), ReadRow(rows));

        rows.RemoveAt(0); // the server's proxy to the dictionary goes; once collected there (and here), the dictionary goes too
        Collect();
        Assert.Equal(1, manager.ServerObjectCount(collect: true)); // once the server's GC has run too
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void MakeAndDrop(mp.Manager manager, int count)
    {
        for (int i = 0; i < count; i++)
        {
            manager.Create<ICounter>().Increment();
            manager.Dictionary<int, int>()[i] = i;
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void AddRow(mp.Manager manager, mp.ListProxy<IDictionary<string, int>> rows)
    {
        IDictionary<string, int> row = manager.Dictionary<string, int>();
        row["first"] = 1;
        rows.Add(row);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static (int Child, int First) ReadRow(mp.ListProxy<IDictionary<string, int>> rows) => (rows[0]["child"], rows[0]["first"]);

    private static void Collect()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }
}
