using System.Runtime.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Pool: Python's API, and the failures CPython's pool hangs on (killed workers, timeouts, cancellation).</summary>
public sealed class PoolTests
{
    private static string? s_initialized;

    /// <summary>Runs a blocking pool call off the test thread with a bound, so a hang fails the test.</summary>
    private static Task<T> Bounded<T>(Func<T> call) => Task.Run(call).WaitAsync(Tests.Bounded.Long);

    private static Task Bounded(Action call) => Task.Run(call).WaitAsync(Tests.Bounded.Long);

    private sealed class Recorder : IProgress<int>
    {
        public List<int> Values { get; } = [];

        public void Report(int value)
        {
            lock (Values)
            {
                Values.Add(value);
            }
        }
    }

    [Fact]
    public void Bad_sizes_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.Pool(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.Pool(1, maxTasksPerChild: 0));
    }

    [Fact]
    public async Task Map_returns_results_in_order_for_any_chunk_size_and_an_empty_input_gives_an_empty_result()
    {
        using var pool = new mp.Pool(2);
        int[] expected = Enumerable.Range(0, 50).Select(x => x * x).ToArray();
        Assert.Equal(expected, await Bounded(() => pool.Map(x => x * x, Enumerable.Range(0, 50))));
        Assert.Equal(expected, await Bounded(() => pool.Map(x => x * x, Enumerable.Range(0, 50), chunkSize: 1)));
        Assert.Equal(expected, await Bounded(() => pool.Map(x => x * x, Enumerable.Range(0, 50), chunkSize: 7)));
        Assert.Empty(await Bounded(() => pool.Map(x => x * x, Array.Empty<int>())));
        Assert.Throws<ArgumentOutOfRangeException>(() => pool.Map(x => x, [1], chunkSize: 0));
    }

    [Fact]
    public async Task MapAsync_is_awaitable_and_Get_with_a_timeout_returns_the_seed_example()
    {
        using var pool = new mp.Pool(4);
        mp.AsyncResult<IReadOnlyList<int>> result = pool.MapAsync(x => x * x, Enumerable.Range(0, 10));
        Assert.Equal([0, 1, 4, 9, 16, 25, 36, 49, 64, 81], result.Get(Tests.Bounded.Long));
        Assert.True(result.Ready);
        Assert.True(result.Successful);
        Assert.Equal([0, 1, 4], await pool.MapAsync(x => x * x, [0, 1, 2]).AsTask().WaitAsync(Tests.Bounded.Long));
    }

    [Fact]
    public async Task Apply_runs_a_lambda_with_its_captured_values_in_a_worker_process()
    {
        using var pool = new mp.Pool(1);
        string greeting = "hello";
        (string text, int pid) = await Bounded(() => pool.Apply(() => (greeting + " from the pool", Environment.ProcessId)));
        Assert.Equal("hello from the pool", text);
        Assert.NotEqual(Environment.ProcessId, pid);
        Assert.Contains(pid, pool.WorkerPids);

        using var scratch = new ScratchDirectory();
        string file = scratch.File("ran");
        await Bounded(() => pool.Apply(() => File.WriteAllText(file, "yes")));
        Assert.Equal("yes", scratch.Read("ran"));
    }

    [Fact]
    public async Task ApplyAsync_runs_the_callback_before_the_result_is_ready_and_the_error_callback_on_failure()
    {
        using var pool = new mp.Pool(1);
        int seen = 0;
        bool readyInCallback = true;
        mp.AsyncResult<int>? pending = null;
        using var callbackRan = new ManualResetEventSlim();
        pending = pool.ApplyAsync(() => 42, callback: value =>
        {
            seen = value;
            readyInCallback = pending!.Ready;
            callbackRan.Set();
        });
        Assert.Equal(42, pending.Get(Tests.Bounded.Long));
        Assert.True(callbackRan.Wait(Tests.Bounded.Long));
        Assert.Equal(42, seen);
        Assert.False(readyInCallback);

        Exception? reported = null;
        mp.AsyncResult<int> failing = pool.ApplyAsync<int>(() => throw new InvalidOperationException("boom"), errorCallback: ex => reported = ex);
        Assert.True(failing.Wait(Tests.Bounded.Long));
        Assert.False(failing.Successful);
        var remote = Assert.IsType<mp.RemoteException>(reported);
        Assert.Equal("System.InvalidOperationException", remote.RemoteType);
        Assert.Equal("boom", remote.Message);
        Assert.Contains("boom", await Assert.ThrowsAsync<mp.RemoteException>(async () => await failing).ContinueWith(t => t.Result.Message));
    }

    [Fact]
    public void An_unready_result_has_no_Successful_and_Get_with_a_timeout_throws_TimeoutException()
    {
        using var pool = new mp.Pool(1);
        using var release = new ScratchDirectory();
        string flag = release.File("go");
        mp.AsyncResult<int> slow = pool.ApplyAsync(() =>
        {
            while (!File.Exists(flag))
            {
                Thread.Sleep(5);
            }

            return 1;
        });
        Assert.False(slow.Ready);
        Assert.Throws<InvalidOperationException>(() => slow.Successful);
        Assert.Throws<TimeoutException>(() => slow.Get(TimeSpan.FromMilliseconds(50)));
        Assert.False(slow.Wait(TimeSpan.Zero));
        File.WriteAllText(flag, "");
        Assert.Equal(1, slow.Get(Tests.Bounded.Long));
    }

    [Fact]
    public async Task A_task_exception_arrives_as_RemoteException_and_Map_runs_every_item_before_throwing()
    {
        using var pool = new mp.Pool(2);
        var ex = await Assert.ThrowsAsync<mp.RemoteException>(() => Bounded(() => pool.Apply<int>(() => throw new ArgumentException("bad argument"))));
        Assert.Equal("System.ArgumentException", ex.RemoteType);
        Assert.Contains("bad argument", ex.Message, StringComparison.Ordinal);
        Assert.False(string.IsNullOrEmpty(ex.RemoteStackTrace));

        using var scratch = new ScratchDirectory();
        string dir = scratch.Path;
        var mapFailure = await Assert.ThrowsAsync<mp.RemoteException>(() => Bounded(() => pool.Map(
            x =>
            {
                File.WriteAllText(Path.Combine(dir, x.ToString(System.Globalization.CultureInfo.InvariantCulture)), "");
                return x == 3 ? throw new InvalidOperationException("three") : x;
            },
            Enumerable.Range(0, 10),
            chunkSize: 1)));
        Assert.Equal("three", mapFailure.Message);
        Assert.Equal(10, Directory.GetFiles(dir).Length); // every item ran: Map does not stop at the first failure
    }

    [Fact]
    public async Task An_exception_from_the_input_enumerable_reaches_the_caller()
    {
        using var pool = new mp.Pool(1);
        static IEnumerable<int> Broken()
        {
            yield return 1;
            throw new FormatException("input broke");
        }

        Assert.Throws<FormatException>(() => pool.Map(x => x, Broken()));
        await Assert.ThrowsAsync<FormatException>(() => Bounded(() => pool.Imap(x => x, Broken()).ToList()));
    }

    [Fact]
    public async Task Imap_is_ordered_and_lazy_over_an_endless_input_and_ImapUnordered_yields_every_result()
    {
        using var pool = new mp.Pool(2);
        static IEnumerable<int> Naturals()
        {
            for (int i = 0; ; i++)
            {
                yield return i;
            }
        }

        Assert.Equal(Enumerable.Range(0, 30).Select(x => x * 2), await Bounded(() => pool.Imap(x => x * 2, Naturals()).Take(30).ToList()));
        Assert.Equal(Enumerable.Range(0, 30).Select(x => x * 2), await Bounded(() => pool.Imap(x => x * 2, Enumerable.Range(0, 30), chunkSize: 4).ToList()));
        List<int> unordered = await Bounded(() => pool.ImapUnordered(x => x + 1, Enumerable.Range(0, 40), chunkSize: 3).ToList());
        Assert.Equal(Enumerable.Range(1, 40), unordered.Order());
    }

    [Fact]
    public async Task Starmap_unpacks_pairs_and_triples()
    {
        using var pool = new mp.Pool(2);
        Assert.Equal([3, 7, 11], await Bounded(() => pool.Starmap((int a, int b) => a + b, [(1, 2), (3, 4), (5, 6)])));
        Assert.Equal(["a1x", "b2y"], await Bounded(() => pool.Starmap((string a, int b, char c) => $"{a}{b}{c}", [("a", 1, 'x'), ("b", 2, 'y')])));
        Assert.Equal([2, 12], await pool.StarmapAsync((int a, int b) => a * b, [(1, 2), (3, 4)]).AsTask().WaitAsync(Tests.Bounded.Long));
    }

    [Fact]
    public async Task Progress_reports_completed_items_up_to_the_total()
    {
        using var pool = new mp.Pool(2);
        var recorder = new Recorder();
        await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 20), chunkSize: 3, progress: recorder));
        Assert.Equal(7, recorder.Values.Count); // one report per chunk
        Assert.Equal(20, recorder.Values.Max());
    }

    [Fact]
    public async Task Close_finishes_submitted_work_then_Join_returns_and_new_work_is_refused()
    {
        var pool = new mp.Pool(2);
        Assert.Throws<InvalidOperationException>(pool.Join);
        var results = Enumerable.Range(0, 20).Select(i => pool.ApplyAsync(() => i * 10)).ToList();
        pool.Close();
        Assert.Throws<InvalidOperationException>(() => pool.ApplyAsync(() => 1));
        Assert.Throws<InvalidOperationException>(() => pool.Map(x => x, [1]));
        await Bounded(pool.Join);
        Assert.Equal(Enumerable.Range(0, 20).Select(i => i * 10), results.Select(r => r.Get(TimeSpan.Zero)));
        Assert.Empty(pool.WorkerPids);
        pool.Dispose();
    }

    [Fact]
    public async Task Terminate_returns_promptly_with_ten_thousand_tasks_pending_and_fails_them()
    {
        var pool = new mp.Pool(2);
        var results = Enumerable.Range(0, 10_000).Select(i => pool.ApplyAsync(() => { Thread.Sleep(1000); return i; })).ToList();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        pool.Terminate();
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"Terminate took {watch.Elapsed}");
        await Bounded(pool.Join);
        Assert.All(results, r => Assert.True(r.Wait(Tests.Bounded.Long) && !r.Successful));
        Assert.ThrowsAny<OperationCanceledException>(() => results[^1].Get());
        Assert.Throws<InvalidOperationException>(() => pool.ApplyAsync(() => 1));
        pool.Dispose();
    }

    [Fact]
    public async Task A_killed_worker_fails_only_its_task_with_ProcessException_and_is_replaced()
    {
        using var pool = new mp.Pool(2);
        static int KillSelf() { System.Diagnostics.Process.GetCurrentProcess().Kill(); return 0; }

        var died = await Assert.ThrowsAsync<mp.ProcessException>(() => Bounded(() => pool.Apply(KillSelf)));
        Assert.Equal(-9, died.ExitCode);

        // In a map: that item's chunk fails, the others complete, and the pool keeps serving.
        var inMap = await Assert.ThrowsAsync<mp.ProcessException>(() => Bounded(() => pool.Map(x => x == 5 ? KillSelf() : x, Enumerable.Range(0, 12), chunkSize: 1)));
        Assert.Equal(-9, inMap.ExitCode);

        List<int> seen = [];
        var inImap = await Assert.ThrowsAsync<mp.ProcessException>(() => Bounded(() =>
        {
            foreach (int value in pool.Imap(x => x == 4 ? KillSelf() : x, Enumerable.Range(0, 10)))
            {
                seen.Add(value);
            }
        }));
        Assert.Equal([0, 1, 2, 3], seen);

        mp.AsyncResult<int> async = pool.ApplyAsync(KillSelf);
        Assert.True(async.Wait(Tests.Bounded.Long));
        Assert.IsType<mp.ProcessException>(Assert.ThrowsAny<Exception>(() => async.Get()));

        Assert.Equal(Enumerable.Range(0, 20), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 20))));
        Assert.Equal(2, pool.WorkerPids.Count);
    }

    [Fact]
    public async Task A_task_past_its_timeout_is_stopped_with_TimeoutException_and_its_worker_replaced()
    {
        using var pool = new mp.Pool(1);
        int before = await Bounded(() => pool.Apply(() => Environment.ProcessId));
        var timedOut = await Assert.ThrowsAsync<TimeoutException>(() => Bounded(() => pool.Apply(() => { Thread.Sleep(Timeout.Infinite); return 0; }, timeout: TimeSpan.FromMilliseconds(200))));
        Assert.Contains("timeout", timedOut.Message, StringComparison.Ordinal);
        int after = await Bounded(() => pool.Apply(() => Environment.ProcessId));
        Assert.NotEqual(before, after);

        await Assert.ThrowsAsync<TimeoutException>(() => Bounded(() => pool.Map(x => { if (x == 2) { Thread.Sleep(Timeout.Infinite); } return x; }, Enumerable.Range(0, 4), timeout: TimeSpan.FromMilliseconds(300))));
        Assert.Equal(7, await Bounded(() => pool.Apply(() => 7, timeout: TimeSpan.FromSeconds(30))));
    }

    [Fact]
    public async Task Cancellation_stops_a_running_task_and_drops_a_pending_one()
    {
        using var pool = new mp.Pool(1);
        using var cts = new CancellationTokenSource();
        using var scratch = new ScratchDirectory();
        string started = scratch.File("started");
        string pendingRan = scratch.File("pending-ran");
        mp.AsyncResult<int> running = pool.ApplyAsync(() => { File.WriteAllText(started, ""); Thread.Sleep(Timeout.Infinite); return 0; }, cancellationToken: cts.Token);
        mp.AsyncResult<int> pending = pool.ApplyAsync(() => { File.WriteAllText(pendingRan, ""); return 1; }, cancellationToken: cts.Token);
        await Bounded(() => SpinWait.SpinUntil(() => File.Exists(started), Tests.Bounded.Long));
        await cts.CancelAsync();
        Assert.True(running.Wait(Tests.Bounded.Long));
        Assert.True(pending.Wait(Tests.Bounded.Long));
        Assert.ThrowsAny<OperationCanceledException>(() => running.Get());
        Assert.ThrowsAny<OperationCanceledException>(() => pending.Get());
        Assert.Equal(5, await Bounded(() => pool.Apply(() => 5)));
        Assert.False(File.Exists(pendingRan));

        using var already = new CancellationTokenSource();
        already.Cancel();
        Assert.ThrowsAny<OperationCanceledException>(() => pool.Apply(() => 1, cancellationToken: already.Token));
    }

    [Fact]
    public async Task MaxTasksPerChild_replaces_workers_after_their_quota()
    {
        using var pool = new mp.Pool(1, maxTasksPerChild: 2);
        var pids = new List<int>();
        for (int i = 0; i < 6; i++)
        {
            pids.Add(await Bounded(() => pool.Apply(() => Environment.ProcessId)));
        }

        Assert.Equal(3, pids.Distinct().Count());
        Assert.All(pids.GroupBy(p => p), group => Assert.Equal(2, group.Count()));
    }

    [Fact]
    public async Task The_initializer_runs_in_each_worker_and_its_failure_fails_the_tasks_clearly()
    {
        using (var pool = new mp.Pool(2, initializer: () => s_initialized = $"initialized in {Environment.ProcessId}"))
        {
            (string? value, int pid) = await Bounded(() => pool.Apply(() => (s_initialized, Environment.ProcessId)));
            Assert.Equal($"initialized in {pid}", value);
        }

        using var broken = new mp.Pool(1, initializer: () => throw new InvalidOperationException("no database"));
        var ex = await Assert.ThrowsAsync<mp.ProcessException>(() => Bounded(() => broken.Apply(() => 1)));
        Assert.Contains("initializer", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no database", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_value_that_cannot_cross_fails_only_its_task_with_the_serializers_message()
    {
        using var pool = new mp.Pool(1);
        using var stream = new MemoryStream();
        var ex = await Assert.ThrowsAsync<SerializationException>(() => Bounded(() => pool.Apply(() => stream.Length)));
        Assert.Contains("stream", ex.Message, StringComparison.Ordinal);

        var back = await Assert.ThrowsAsync<mp.RemoteException>(() => Bounded(() => pool.Apply<object>(() => new MemoryStream())));
        Assert.Contains("result could not be sent back", back.Message, StringComparison.Ordinal);
        Assert.Equal(3, await Bounded(() => pool.Apply(() => 3)));
    }

    [Fact]
    public async Task A_task_may_capture_a_connection_and_use_it_in_the_worker()
    {
        using var pool = new mp.Pool(1);
        (mp.Connection ours, mp.Connection theirs) = mp.Pipe.Create();
        using (ours)
        using (theirs)
        {
            await Bounded(() => pool.Apply(() => theirs.Send("from a pool worker")));
            Assert.True(ours.Poll(Tests.Bounded.Long));
            Assert.Equal("from a pool worker", ours.Recv<string>());
        }
    }

    [Fact]
    public async Task Functions_cross_once_per_worker_yet_captured_values_are_always_current()
    {
        using var pool = new mp.Pool(1);
        int captured = 1;
        Func<int> closure = () => captured;
        Assert.Equal(1, await Bounded(() => pool.Apply(closure)));
        captured = 2; // the same delegate with new state: it must be shipped again, not served from the worker's cache
        Assert.Equal(2, await Bounded(() => pool.Apply(closure)));

        // More distinct functions than a worker caches: both sides evict the same ones and nothing goes missing.
        for (int round = 0; round < 150; round++)
        {
            int offset = round;
            Assert.Equal([offset, offset + 1], await Bounded(() => pool.Map(x => x + offset, [0, 1], chunkSize: 1)));
            Assert.Equal(7, await Bounded(() => pool.Apply(static () => 7)));
        }
    }

    [Fact]
    public async Task Leaving_an_iteration_early_and_a_blocking_Apply_beside_queued_work_leave_the_pool_serving()
    {
        using var pool = new mp.Pool(1);
        Assert.Equal(1, await Bounded(() => pool.ImapUnordered(x => { Thread.Sleep(20); return x; }, Enumerable.Range(1, 20)).First()));
        Assert.Equal(1, await Bounded(() => pool.Imap(x => x, Enumerable.Range(1, 20)).First()));

        // One thread holds the only worker through a blocking Apply while another queues work behind it.
        using var scratch = new ScratchDirectory();
        string started = scratch.File("started");
        Task<int> slow = Bounded(() => pool.Apply(() => { File.WriteAllText(started, ""); Thread.Sleep(300); return 1; }));
        await Bounded(() => SpinWait.SpinUntil(() => File.Exists(started), Tests.Bounded.Long));
        mp.AsyncResult<int> queued = pool.ApplyAsync(() => 2);
        Assert.Equal(1, await slow);
        Assert.Equal(2, queued.Get(Tests.Bounded.Long));
        Assert.Equal(Enumerable.Range(0, 10), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 10))));
    }

    [Fact]
    public async Task A_worker_killed_while_idle_is_replaced_without_waiting_for_a_task()
    {
        using var pool = new mp.Pool(1);
        int first = await Bounded(() => pool.Apply(() => Environment.ProcessId));
        Assert.Equal([first], pool.WorkerPids);
        System.Diagnostics.Process.GetProcessById(first).Kill();
        Assert.True(SpinWait.SpinUntil(() => pool.WorkerPids is [int pid] && pid != first, Tests.Bounded.Long), "the idle worker was not replaced");
        int second = await Bounded(() => pool.Apply(() => Environment.ProcessId));
        Assert.NotEqual(first, second);
        Assert.Equal([second], pool.WorkerPids);
    }

    [Fact]
    public async Task Cancelling_a_task_queued_behind_a_running_one_fails_only_the_cancelled_task()
    {
        using var pool = new mp.Pool(1);
        using var scratch = new ScratchDirectory();
        string started = scratch.File("started");
        using var cts = new CancellationTokenSource();
        mp.AsyncResult<int> running = pool.ApplyAsync(() => { File.WriteAllText(started, ""); Thread.Sleep(300); return 1; });
        mp.AsyncResult<int> behind = pool.ApplyAsync(() => { Thread.Sleep(Timeout.Infinite); return 2; }, cancellationToken: cts.Token);
        await Bounded(() => SpinWait.SpinUntil(() => File.Exists(started), Tests.Bounded.Long));
        await cts.CancelAsync();
        Assert.Equal(1, running.Get(Tests.Bounded.Long));
        Assert.True(behind.Wait(Tests.Bounded.Long));
        Assert.ThrowsAny<OperationCanceledException>(() => behind.Get());
        Assert.Equal(3, await Bounded(() => pool.Apply(() => 3)));
    }

    [Fact]
    public async Task An_ApplyAsync_result_reaches_whoever_waits_for_it_first_and_completes_untouched()
    {
        using var pool = new mp.Pool(1);

        // Awaited, not blocked on: the pool's thread receives it.
        Assert.Equal(1, await pool.ApplyAsync(static () => 1).AsTask().WaitAsync(Tests.Bounded.Long));

        // Two threads block on the same result at once: one receives it, both see it.
        mp.AsyncResult<int> shared = pool.ApplyAsync(static () => { Thread.Sleep(50); return 2; });
        int[] seen = await Task.WhenAll(Bounded(() => shared.Get()), Bounded(() => shared.Get()));
        Assert.Equal(new[] { 2, 2 }, seen);

        // Left alone while other work arrives: that work is not held up behind it, and the result stays.
        mp.AsyncResult<int> untouched = pool.ApplyAsync(static () => 3);
        Assert.Equal(Enumerable.Range(0, 10), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 10), chunkSize: 1)));
        Assert.Equal(3, untouched.Get(Tests.Bounded.Long));

        // Left alone with nothing else to do: it still completes by itself.
        mp.AsyncResult<int> alone = pool.ApplyAsync(static () => 4);
        Assert.True(SpinWait.SpinUntil(() => alone.IsCompletedQuietly, Tests.Bounded.Long), "a result nobody waited for never completed");
        Assert.Equal(4, alone.Get());

        // A waiter that gives up while the task runs leaves it to the pool; a later Get still has it.
        mp.AsyncResult<int> slow = pool.ApplyAsync(static () => { Thread.Sleep(300); return 5; });
        Assert.Throws<TimeoutException>(() => slow.Get(TimeSpan.FromMilliseconds(10)));
        Assert.Equal(5, slow.Get(Tests.Bounded.Long));
        Assert.Equal(6, await Bounded(() => pool.Apply(static () => 6)));
    }

    [Fact]
    public async Task A_worker_that_dies_among_pipelined_tasks_fails_exactly_the_one_it_was_running()
    {
        using var pool = new mp.Pool(2);
        static int KillSelf() { System.Diagnostics.Process.GetCurrentProcess().Kill(); return 0; }

        // Many short tasks go to each worker at once and their results travel together, so the ones finished before the
        // fatal task may still be held in the worker when it dies: they run again; only the fatal one fails.
        for (int round = 0; round < 3; round++)
        {
            Assert.Equal(Enumerable.Range(0, 100), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 100), chunkSize: 1))); // short tasks: the workers are fed far ahead
            mp.AsyncResult<int>[] results = Enumerable.Range(0, 60).Select(i => pool.ApplyAsync(() => i == 37 ? KillSelf() : i)).ToArray();
            await Bounded(() => Array.ForEach(results, r => r.Wait(Tests.Bounded.Long)));
            for (int i = 0; i < results.Length; i++)
            {
                if (i == 37)
                {
                    Assert.IsType<mp.ProcessException>(Assert.ThrowsAny<Exception>(() => results[i].Get()));
                }
                else
                {
                    Assert.Equal(i, results[i].Get());
                }
            }
        }
    }

    [Fact]
    public async Task A_finished_tasks_result_is_not_held_back_by_a_long_task_behind_it_in_the_same_worker()
    {
        var pool = new mp.Pool(1);
        try
        {
            Assert.Equal(Enumerable.Range(0, 40), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 40), chunkSize: 1))); // short tasks so far: the worker is fed ahead
            using var scratch = new ScratchDirectory();
            string started = scratch.File("started");
            string go = scratch.File("go");

            // A task the pool's thread waits on holds the worker while two more queue; when its result arrives, both go
            // to the worker in one write. (Its token only keeps the pool's thread, not a caller, receiving its result.)
            using var cts = new CancellationTokenSource();
            mp.AsyncResult<int> blocker = pool.ApplyAsync(
                () =>
                {
                    File.WriteAllText(started, "");
                    SpinWait.SpinUntil(() => File.Exists(go), TimeSpan.FromSeconds(60));
                    return 1;
                },
                cancellationToken: cts.Token);
            await Bounded(() => SpinWait.SpinUntil(() => File.Exists(started), Tests.Bounded.Long));
            mp.AsyncResult<int> quick = pool.ApplyAsync(static () => 2);
            mp.AsyncResult<int> endless = pool.ApplyAsync(static () => { Thread.Sleep(Timeout.Infinite); return 3; });
            File.WriteAllText(go, "");
            Assert.Equal(1, blocker.Get(Tests.Bounded.Long));

            // The worker finishes the quick one with the endless one already received, then runs that for ever: the
            // quick one's result must still go out.
            Assert.Equal(2, quick.Get(Tests.Bounded.Long));
            Assert.False(endless.IsCompletedQuietly);
        }
        finally
        {
            pool.Terminate();
            pool.Join();
        }
    }

    [Fact]
    public async Task A_map_larger_than_the_queued_window_completes_after_Close_and_cancels_as_a_whole()
    {
        // Chunks are queued in waves of a few hundred: more than that must all run, in order, even once the pool is closed.
        var pool = new mp.Pool(2);
        var progress = new Recorder();
        mp.AsyncResult<IReadOnlyList<int>> big = pool.MapAsync(x => x * 2, Enumerable.Range(0, 3000), chunkSize: 1, progress: progress);
        pool.Close();
        Assert.Equal(Enumerable.Range(0, 3000).Select(x => x * 2), big.Get(Tests.Bounded.Long));
        await Bounded(pool.Join);
        lock (progress.Values)
        {
            Assert.Equal(3000, progress.Values.Max());
        }

        // Cancelled part-way: the chunks not yet queued fail with the rest, and the map ends.
        using var cancelled = new mp.Pool(2);
        using var cts = new CancellationTokenSource();
        using var scratch = new ScratchDirectory();
        string started = scratch.File("started");
        mp.AsyncResult<IReadOnlyList<int>> slow = cancelled.MapAsync(
            x => { File.WriteAllText(started, ""); Thread.Sleep(1); return x; }, Enumerable.Range(0, 3000), chunkSize: 1, cancellationToken: cts.Token);
        await Bounded(() => SpinWait.SpinUntil(() => File.Exists(started), Tests.Bounded.Long));
        await cts.CancelAsync();
        Assert.True(slow.Wait(Tests.Bounded.Long));
        Assert.ThrowsAny<OperationCanceledException>(() => slow.Get());
        Assert.Equal(4, await Bounded(() => cancelled.Apply(static () => 4)));
    }

    [Fact]
    public async Task A_few_long_tasks_after_many_short_ones_are_shared_between_the_workers()
    {
        using var pool = new mp.Pool(2);
        Assert.Equal(Enumerable.Range(0, 200), await Bounded(() => pool.Map(x => x, Enumerable.Range(0, 200), chunkSize: 1))); // the workers learn that tasks are short
        IReadOnlyList<int> pids = await Bounded(() => pool.Map(_ => { Thread.Sleep(100); return Environment.ProcessId; }, Enumerable.Range(0, 8), chunkSize: 1));
        Assert.Equal(2, pids.Distinct().Count());
    }
}
