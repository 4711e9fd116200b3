using System.Globalization;
using System.Runtime.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

public sealed class ProcessTests : IDisposable
{
    private readonly ScratchDirectory _scratch = new();

    public void Dispose() => _scratch.Dispose();

    private static string Text(int value) => value.ToString(CultureInfo.InvariantCulture);

    [Fact]
    public void Action_target_runs_in_a_child_process()
    {
        string path = _scratch.File("pid");
        var p = new mp.Process(() => File.WriteAllText(path, Text(Environment.ProcessId)));
        Bounded.Run(p);

        Assert.Equal(0, p.ExitCode);
        Assert.NotEqual(Text(Environment.ProcessId), File.ReadAllText(path));
        Assert.Equal(Text(p.Pid!.Value), File.ReadAllText(path));
    }

    private sealed class Multiplier(int factor)
    {
        public int Factor { get; } = factor;

        public Action Writer(string path, int x) => () => File.WriteAllText(path, Text(x * Factor));
    }

    [Fact]
    public void Captured_locals_and_this_are_copied_into_the_child()
    {
        string path = _scratch.File("product");
        Bounded.Run(new mp.Process(new Multiplier(3).Writer(path, 14)));
        Assert.Equal("42", File.ReadAllText(path));
    }

    [Fact]
    public void Changes_the_child_makes_to_captured_state_stay_in_the_child()
    {
        var list = new List<int> { 1 };
        int counter = 5;
        Bounded.Run(new mp.Process(() => { list.Add(2); counter++; }));
        Assert.Equal([1], list);
        Assert.Equal(5, counter);
    }

    [Fact]
    public void Typed_arguments_reach_the_target()
    {
        string path = _scratch.File("args");
        Bounded.Run(new mp.Process<string, int, double, List<string>>(
            static (file, number, real, words) => File.WriteAllText(file, $"{number}|{real.ToString(CultureInfo.InvariantCulture)}|{string.Join(',', words)}"),
            path, 7, 2.5, ["a", "b"]));
        Assert.Equal("7|2.5|a,b", File.ReadAllText(path));

        string one = _scratch.File("one");
        Bounded.Run(new mp.Process<string>(static file => File.WriteAllText(file, "1"), one));
        Assert.Equal("1", File.ReadAllText(one));

        string two = _scratch.File("two");
        Bounded.Run(new mp.Process<string, char>(static (file, c) => File.WriteAllText(file, c.ToString()), two, 'z'));
        Assert.Equal("z", File.ReadAllText(two));

        string three = _scratch.File("three");
        Bounded.Run(new mp.Process<string, int, int>(static (file, a, b) => File.WriteAllText(file, Text(a + b)), three, 2, 3));
        Assert.Equal("5", File.ReadAllText(three));
    }

    [Fact]
    public void Async_target_is_awaited_in_the_child()
    {
        string path = _scratch.File("async");
        var p = new mp.Process(async () =>
        {
            await Task.Yield();
            await Task.Delay(20);
            await File.WriteAllTextAsync(path, "awaited");
        });
        Bounded.Run(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal("awaited", File.ReadAllText(path));
    }

    private sealed class Worker : mp.Process
    {
        private readonly string _path;
        private readonly int[] _numbers;

        public Worker(string path, int[] numbers)
            : base("worker")
        {
            _path = path;
            _numbers = numbers;
        }

        protected override void Run() => File.WriteAllText(_path, $"{Current.Name}:{_numbers.Sum()}");
    }

    [Fact]
    public void Subclass_overriding_Run_carries_its_fields_to_the_child()
    {
        string path = _scratch.File("worker");
        var worker = new Worker(path, [1, 2, 3]);
        Bounded.Run(worker);
        Assert.Equal("worker:6", File.ReadAllText(path));
    }

    private static void WriteStatic(string path) => File.WriteAllText(path, "static");

    private static void WriteGeneric<T>(string path, T value) => File.WriteAllText(path, typeof(T).Name + "=" + value);

    private string _instanceText = "instance";

    private void WriteInstance(string path) => File.WriteAllText(path, _instanceText);

    [Fact]
    public void Static_instance_generic_local_and_nested_targets_all_work()
    {
        string s = _scratch.File("static");
        Bounded.Run(new mp.Process<string>(WriteStatic, s));
        Assert.Equal("static", File.ReadAllText(s));

        string g = _scratch.File("generic");
        Bounded.Run(new mp.Process<string, int>(WriteGeneric, g, 5));
        Assert.Equal("Int32=5", File.ReadAllText(g));

        var owner = new ProcessTests.InstanceOwner { Text = "from instance" };
        string i = _scratch.File("instance");
        Bounded.Run(new mp.Process<string>(owner.Write, i));
        Assert.Equal("from instance", File.ReadAllText(i));

        string l = _scratch.File("local");
        int offset = 10;
        void Local() => File.WriteAllText(l, Text(offset + 1));
        Bounded.Run(new mp.Process(Local));
        Assert.Equal("11", File.ReadAllText(l));

        string n = _scratch.File("nested");
        int outer = 2;
        Func<int, Action> make = inner => () => File.WriteAllText(n, Text(outer * inner));
        Bounded.Run(new mp.Process(make(21)));
        Assert.Equal("42", File.ReadAllText(n));
    }

    private sealed class InstanceOwner
    {
        public string Text { get; set; } = "";

        public void Write(string path) => File.WriteAllText(path, Text);
    }

    [Fact]
    public void After_Join_the_child_is_gone_even_with_background_threads_running()
    {
        string path = _scratch.File("busy");
        var p = new mp.Process(() =>
        {
            new Thread(() =>
            {
                while (true)
                {
                    File.AppendAllText(path, "x");
                }
            })
            { IsBackground = true }.Start();
        });
        Bounded.Run(p);
        Assert.False(Directory.Exists($"/proc/{p.Pid}"), "the child still exists after Join returned");
        Assert.False(p.IsAlive);
        long length = new FileInfo(path).Length;
        Assert.Equal(length, new FileInfo(path).Length);
    }

    [Fact]
    public void Children_leave_no_runtime_files_behind_however_they_end()
    {
        // Files of earlier processes that were not ours (killed build servers, test hosts…) may carry a reused pid:
        // only files that appear during the test count.
        string directory = Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } tmp ? tmp : "/tmp";
        var before = new HashSet<string>(Directory.GetFiles(directory, "dotnet-diagnostic-*-socket"));
        var returns = new mp.Process(() => { });
        var fails = new mp.Process(() => throw new InvalidOperationException("x"));
        var killed = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        var terminated = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        mp.Process[] all = [returns, fails, killed, terminated];
        foreach (mp.Process p in all)
        {
            p.Start();
        }

        killed.Kill();
        terminated.Terminate();
        foreach (mp.Process p in all)
        {
            Bounded.Join(p);
        }

        foreach (mp.Process p in all)
        {
            Assert.DoesNotContain(Directory.GetFiles(directory, $"dotnet-diagnostic-{p.Pid}-*-socket"), f => !before.Contains(f));
        }
    }

    [Fact]
    public void Join_accepts_any_timeout_up_to_forever()
    {
        var p = new mp.Process(() => { });
        p.Start();
        Assert.True(p.Join(TimeSpan.MaxValue));
        Assert.True(p.Join(Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public void Starting_twice_throws_InvalidOperationException()
    {
        var p = new mp.Process(() => { });
        p.Start();
        Assert.Throws<InvalidOperationException>(p.Start);
        Bounded.Join(p);
        Assert.Throws<InvalidOperationException>(p.Start);
    }

    [Fact]
    public void Joining_or_signalling_an_unstarted_process_throws()
    {
        var p = new mp.Process(() => { });
        Assert.Throws<InvalidOperationException>(p.Join);
        Assert.Throws<InvalidOperationException>(p.Terminate);
        Assert.Throws<InvalidOperationException>(p.Kill);
        Assert.Throws<ArgumentOutOfRangeException>(() => p.Join(TimeSpan.FromSeconds(-2)));
        Assert.False(p.IsAlive);
        Assert.Null(p.Pid);
        Assert.Null(p.ExitCode);
    }

    [Fact]
    public void Join_with_timeout_reports_whether_the_process_ended()
    {
        var p = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        p.Start();
        Assert.True(p.IsAlive);
        Assert.False(p.Join(TimeSpan.FromMilliseconds(50)));
        Assert.False(p.Join(TimeSpan.Zero));
        Assert.Null(p.ExitCode);
        p.Kill();
        Bounded.Join(p);
        Assert.False(p.IsAlive);
        Assert.Equal(-9, p.ExitCode);
    }

    [Fact]
    public async Task JoinAsync_completes_when_the_child_ends_and_honours_cancellation()
    {
        var p = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        p.Start();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(50));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => p.JoinAsync(cts.Token));
        p.Terminate();
        await p.JoinAsync().WaitAsync(Bounded.Long);
        Assert.Equal(-15, p.ExitCode);
    }

    [Theory]
    [InlineData("return", 0)]
    [InlineData("exit", 3)]
    [InlineData("throw", 1)]
    public void Exit_code_follows_how_the_target_ended(string how, int expected)
    {
        var p = new mp.Process<string>(static h =>
        {
            switch (h)
            {
                case "exit":
                    Environment.Exit(3);
                    break;
                case "throw":
                    throw new InvalidOperationException("bad");
            }
        }, how);
        Bounded.Run(p);
        Assert.Equal(expected, p.ExitCode);
        Assert.Equal(expected == 1, p.Error is not null);
    }

    [Fact]
    public void Terminate_gives_minus_15_and_Kill_minus_9()
    {
        var terminated = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        var killed = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        terminated.Start();
        killed.Start();
        terminated.Terminate();
        killed.Kill();
        Bounded.Join(terminated);
        Bounded.Join(killed);
        Assert.Equal(-15, terminated.ExitCode);
        Assert.Equal(-9, killed.ExitCode);
        terminated.Terminate(); // ended: no-op
    }

    private static void Fail()
    {
        try
        {
            throw new ArgumentException("inner cause", "widget");
        }
        catch (ArgumentException ex)
        {
            throw new InvalidOperationException("outer failure", ex);
        }
    }

    [Fact]
    public void Unhandled_exception_is_reported_in_Error()
    {
        var p = new mp.Process(Fail);
        Bounded.Run(p);

        Assert.Equal(1, p.ExitCode);
        RemoteException error = Assert.IsType<RemoteException>(p.Error);
        Assert.Equal("System.InvalidOperationException", error.RemoteType);
        Assert.Equal("outer failure", error.Message);
        Assert.Contains(nameof(Fail), error.RemoteStackTrace, StringComparison.Ordinal);
        RemoteException inner = Assert.IsType<RemoteException>(error.InnerException);
        Assert.Equal("System.ArgumentException", inner.RemoteType);
        Assert.Contains("inner cause", inner.Message, StringComparison.Ordinal);
        Assert.Contains("System.InvalidOperationException: outer failure", error.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Names_default_to_Process_N_and_nest_as_Process_N_colon_M()
    {
        string path = _scratch.File("names");
        var p = new mp.Process(() =>
        {
            var grandchild = new mp.Process(() => { });
            File.WriteAllText(path, mp.Process.Current.Name + "|" + grandchild.Name);
        });
        Assert.Matches(@"^Process-\d+$", p.Name);
        Bounded.Run(p);
        Assert.Equal($"{p.Name}|{p.Name}:1", File.ReadAllText(path));

        var named = new mp.Process(() => { }, name: "custom");
        Assert.Equal("custom", named.Name);
        named.Name = "renamed";
        Assert.Equal("renamed", named.Name);
    }

    [Fact]
    public void Current_and_Parent_describe_the_process_tree()
    {
        Assert.Equal("MainProcess", mp.Process.Current.Name);
        Assert.Equal(Environment.ProcessId, mp.Process.Current.Pid);
        Assert.True(mp.Process.Current.IsAlive);
        Assert.Null(mp.Process.Parent);

        string path = _scratch.File("tree");
        var p = new mp.Process(() => File.WriteAllText(path, string.Join('|',
            mp.Process.Current.Name,
            mp.Process.Current.Pid == Environment.ProcessId,
            mp.Process.Parent!.Name,
            mp.Process.Parent.Pid,
            mp.Process.Parent.IsAlive)), name: "tree-child");
        Bounded.Run(p);
        Assert.Equal($"tree-child|True|MainProcess|{Environment.ProcessId}|True", File.ReadAllText(path));
    }

    [Fact]
    public void ActiveChildren_lists_running_children_only()
    {
        var p = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        p.Start();
        Assert.Contains(p, mp.Process.ActiveChildren());
        p.Kill();
        Bounded.Join(p);
        Assert.DoesNotContain(p, mp.Process.ActiveChildren());
    }

    [Fact]
    public void Daemon_is_set_before_start_and_inherited_by_children_of_a_daemon()
    {
        string path = _scratch.File("daemon");
        var p = new mp.Process(() => File.WriteAllText(path, new mp.Process(() => { }).Daemon.ToString()), daemon: true);
        Assert.True(p.Daemon);
        Assert.False(new mp.Process(() => { }).Daemon);
        Bounded.Run(p);
        Assert.Throws<InvalidOperationException>(() => p.Daemon = false);
        Assert.Equal("True", File.ReadAllText(path));
    }

    [Fact]
    public void Sentinel_becomes_ready_when_the_process_ends()
    {
        var p = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        Assert.Throws<InvalidOperationException>(() => p.Sentinel);
        p.Start();
        var backend = Platform.ProcessBackend.Current;
        Assert.False(backend.WaitSentinel(p.Sentinel, TimeSpan.Zero));
        p.Kill();
        Assert.True(backend.WaitSentinel(p.Sentinel, Bounded.Long));
        Bounded.Join(p);
        p.Dispose();
        Assert.Throws<ObjectDisposedException>(() => p.Sentinel);
    }

    [Fact]
    public void Waiting_on_a_released_sentinel_reports_the_process_ended()
    {
        // At exit the spare's sentinel can be released by the watcher while the exit handler still waits on it.
        var p = new mp.Process(() => { });
        Bounded.Run(p);
        System.Runtime.InteropServices.SafeHandle sentinel = p.Sentinel;
        p.Dispose();
        Assert.True(sentinel.IsClosed);
        Assert.True(Platform.ProcessBackend.Current.WaitSentinel(sentinel, TimeSpan.Zero));
    }

    [Fact]
    public void Disposing_a_running_process_does_not_stop_it()
    {
        string path = _scratch.File("survived");
        var p = new mp.Process(() => File.WriteAllText(path, "done"));
        p.Start();
        p.Dispose();
        Bounded.Join(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Equal("done", File.ReadAllText(path));
    }

    [Fact]
    public void Child_inherits_environment_and_working_directory_but_not_bootstrap_variables()
    {
        string path = _scratch.File("env");
        Environment.SetEnvironmentVariable("MP_TEST_MARKER", "inherited");
        try
        {
            var p = new mp.Process(() =>
            {
                (int _, string env, string _) = Bounded.Command("/usr/bin/env");
                File.WriteAllText(path, string.Join('\n',
                    Environment.GetEnvironmentVariable("MP_TEST_MARKER"),
                    Environment.CurrentDirectory,
                    env.Contains("MULTIPROCESSING_", StringComparison.Ordinal),
                    env.Contains("Multiprocessing.dll", StringComparison.Ordinal),
                    Environment.GetEnvironmentVariable("MULTIPROCESSING_CHILD_FD") is null));
            });
            Bounded.Run(p);
        }
        finally
        {
            Environment.SetEnvironmentVariable("MP_TEST_MARKER", null);
        }

        Assert.Equal(["inherited", Environment.CurrentDirectory, "False", "False", "True"], File.ReadAllText(path).Split('\n'));
    }

    [Fact]
    public void A_target_capturing_a_stream_fails_at_Start_and_nothing_is_started()
    {
        using var log = new StreamWriter(new MemoryStream());
        var p = new mp.Process(() => log.WriteLine("never"));
        var ex = Assert.Throws<SerializationException>(p.Start);
        Assert.Contains("closure field 'log'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("System.IO.StreamWriter", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cannot cross a process boundary", ex.Message, StringComparison.Ordinal);
        Assert.Null(p.Pid);
        Assert.False(p.IsAlive);
        Assert.DoesNotContain(p, mp.Process.ActiveChildren());
    }

    [Fact]
    public void A_process_object_cannot_be_captured_by_another_target()
    {
        var other = new mp.Process(() => { });
        var p = new mp.Process(() => other.Start());
        var ex = Assert.Throws<SerializationException>(p.Start);
        Assert.Contains("closure field 'other'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_child_whose_parent_is_killed_exits_by_itself()
    {
        string path = _scratch.File("grandchild");
        var parent = new mp.Process(() =>
        {
            var grandchild = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
            grandchild.Start();
            File.WriteAllText(path, Text(grandchild.Pid!.Value));
            System.Diagnostics.Process.GetCurrentProcess().Kill(); // SIGKILL: no exit handlers run
        });
        Bounded.Run(parent);
        Assert.Equal(-9, parent.ExitCode);

        int orphan = int.Parse(File.ReadAllText(path), CultureInfo.InvariantCulture);
        Assert.True(Bounded.ProcessEnds(orphan, TimeSpan.FromSeconds(5)), $"orphan {orphan} is still running");
    }

    [Fact]
    public void A_hundred_processes_start_and_join()
    {
        var processes = Enumerable.Range(0, 100)
            .Select(i => new mp.Process<int>(static n => { if (n % 10 == 0) { Environment.Exit(n / 10); } }, i))
            .ToList();
        foreach (mp.Process p in processes)
        {
            p.Start();
        }

        foreach (mp.Process p in processes)
        {
            Bounded.Join(p);
        }

        for (int i = 0; i < processes.Count; i++)
        {
            Assert.Equal(i % 10 == 0 ? i / 10 : 0, processes[i].ExitCode);
        }
    }

    [Fact]
    public void ToString_shows_name_and_state()
    {
        var p = new mp.Process(() => { }, name: "shown");
        Assert.Equal("<Process name='shown' initial>", p.ToString());
        Bounded.Run(p);
        Assert.Contains("name='shown'", p.ToString(), StringComparison.Ordinal);
        Assert.Contains("stopped", p.ToString(), StringComparison.Ordinal);
    }
}
