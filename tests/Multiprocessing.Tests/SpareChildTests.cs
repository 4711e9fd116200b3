using Multiprocessing.Spawning;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

[CollectionDefinition(nameof(SpareChildTests), DisableParallelization = true)]
public sealed class SpareChildCollection;

/// <summary>The spare child is process-wide state, so these run alone.</summary>
[Collection(nameof(SpareChildTests))]
public sealed class SpareChildTests : IDisposable
{
    private readonly ScratchDirectory _scratch = new();

    public void Dispose()
    {
        mp.Process.KeepSpareChild = true;
        _scratch.Dispose();
    }

    /// <summary>Starts a throwaway child (which launches a spare behind it) and waits until the spare is ready.</summary>
    private static void EnsureSpare()
    {
        mp.Process.KeepSpareChild = true;
        Bounded.Run(new mp.Process(() => { }));
        Assert.True(ChildLauncher.SpareReady.Wait(Bounded.Long), "no spare child became ready");
    }

    [Fact]
    public void A_start_takes_the_ready_spare()
    {
        EnsureSpare();
        int spare = ChildLauncher.SparePid!.Value;
        var p = new mp.Process(() => { });
        Bounded.Run(p);
        Assert.Equal(spare, p.Pid);
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void The_spare_prepares_the_methods_of_the_last_start_before_its_own_request()
    {
        EnsureSpare(); // the spare was hinted with the throwaway start's lambda (one method)
        int spare = ChildLauncher.SparePid!.Value;
        (mp.Connection reports, mp.Connection childEnd) = mp.Pipe.Create();
        using (reports)
        {
            var p = new mp.Process(() => childEnd.Send(ChildBootstrap.PreparedMethods));
            p.Start();
            childEnd.Close();
            Assert.True(reports.Poll(Bounded.Long), "the child reported nothing");
            Assert.Equal(1, reports.Recv<int>());
            Bounded.Join(p);
            Assert.Equal(spare, p.Pid);
        }
    }

    [Fact]
    public void Environment_changed_after_the_spare_started_reaches_the_child()
    {
        EnsureSpare();
        int spare = ChildLauncher.SparePid!.Value;
        string path = _scratch.File("env");
        Environment.SetEnvironmentVariable("MP_SPARE_TEST", "changed");
        try
        {
            var p = new mp.Process(() => File.WriteAllText(path, Environment.GetEnvironmentVariable("MP_SPARE_TEST") ?? "missing"));
            Bounded.Run(p);
            Assert.NotEqual(spare, p.Pid); // the stale spare was not used
        }
        finally
        {
            Environment.SetEnvironmentVariable("MP_SPARE_TEST", null);
        }

        Assert.Equal("changed", File.ReadAllText(path));
        Assert.True(Bounded.ProcessEnds(spare, Bounded.Long), "the discarded spare is still running");
    }

    [Fact]
    public void Working_directory_changed_after_the_spare_started_reaches_the_child()
    {
        EnsureSpare();
        string path = _scratch.File("cwd");
        string original = Environment.CurrentDirectory;
        Environment.CurrentDirectory = _scratch.Path;
        try
        {
            Bounded.Run(new mp.Process(() => File.WriteAllText(path, Environment.CurrentDirectory)));
        }
        finally
        {
            Environment.CurrentDirectory = original;
        }

        Assert.Equal(_scratch.Path, File.ReadAllText(path));
    }

    [Fact]
    public void A_spare_killed_from_outside_is_replaced_and_the_start_still_works()
    {
        EnsureSpare();
        int spare = ChildLauncher.SparePid!.Value;
        System.Diagnostics.Process.GetProcessById(spare).Kill();
        Assert.True(Bounded.ProcessEnds(spare, Bounded.Long));

        string path = _scratch.File("ran");
        var p = new mp.Process(() => File.WriteAllText(path, "ran"));
        Bounded.Run(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal("ran", File.ReadAllText(path));
    }

    [Fact]
    public void Turning_the_spare_off_stops_it_and_starts_still_work()
    {
        EnsureSpare();
        int spare = ChildLauncher.SparePid!.Value;
        mp.Process.KeepSpareChild = false;
        Assert.Null(ChildLauncher.SparePid);
        Assert.True(Bounded.ProcessEnds(spare, Bounded.Long), "the spare outlived KeepSpareChild = false");

        var p = new mp.Process(() => { });
        Bounded.Run(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Null(ChildLauncher.SparePid);
    }

    [Fact]
    public void Many_threads_can_start_processes_at_once()
    {
        var processes = new mp.Process[16];
        Parallel.For(0, processes.Length, i =>
        {
            processes[i] = new mp.Process<int>(static n => Environment.Exit(n), i);
            processes[i].Start();
        });

        for (int i = 0; i < processes.Length; i++)
        {
            Bounded.Join(processes[i]);
            Assert.Equal(i, processes[i].ExitCode);
        }

        Assert.Equal(processes.Length, processes.Select(p => p.Pid).Distinct().Count());
    }
}
