using System.Diagnostics;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Barrier between threads and processes: CPython's threading.Barrier rules, and dead parties.</summary>
public sealed class BarrierTests
{
    [Fact]
    public void Three_processes_pass_a_barrier_1000_times_with_distinct_indices_and_one_action_per_pass()
    {
        const int Passes = 1000, Parties = 3;
        using var shared = new SharedCounter(8 + Passes);
        using var barrier = new mp.Barrier(Parties, () => Interlocked.Increment(ref shared[2]));
        Action party = () =>
        {
            for (int pass = 0; pass < Passes; pass++)
            {
                int index = barrier.Wait(Bounded.Long);
                Interlocked.Or(ref shared[8 + pass], 1 << index);
            }
        };
        mp.Process[] children = [new mp.Process(party), new mp.Process(party)];
        foreach (mp.Process child in children)
        {
            child.Start();
        }

        party();
        foreach (mp.Process child in children)
        {
            Bounded.Join(child);
            Assert.Equal(0, child.ExitCode);
        }

        Assert.Equal(Passes, shared[2]);
        Assert.All(Enumerable.Range(0, Passes), pass => Assert.Equal(0b111, shared[8 + pass]));
        Assert.False(barrier.Broken);
        Assert.Equal(0, barrier.NWaiting);
        Assert.Equal(Parties, barrier.Parties);
    }

    [Fact]
    public void A_timeout_breaks_the_barrier_for_every_waiter_until_Reset()
    {
        using var barrier = new mp.Barrier(3);
        Exception? other = null;
        var waiter = new Thread(() => other = Record.Exception(() => barrier.Wait(Bounded.Long)));
        waiter.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));

        var clock = Stopwatch.StartNew();
        Assert.Throws<mp.BrokenBarrierException>(() => barrier.Wait(TimeSpan.FromMilliseconds(100)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(99), TimeSpan.FromSeconds(10));
        Assert.True(waiter.Join(Bounded.Long));
        Assert.IsType<mp.BrokenBarrierException>(other);
        Assert.True(barrier.Broken);
        Assert.Throws<mp.BrokenBarrierException>(() => barrier.Wait(Bounded.Long));

        barrier.Reset();
        Assert.False(barrier.Broken);
        PassWithThreads(barrier, 3);
    }

    [Fact]
    public void The_default_timeout_applies_and_Abort_breaks_a_waiting_child()
    {
        using (var timed = new mp.Barrier(2, timeout: TimeSpan.FromMilliseconds(50)))
        {
            Assert.Throws<mp.BrokenBarrierException>(() => timed.Wait());
        }

        using var barrier = new mp.Barrier(2);
        var child = new mp.Process(() => barrier.Wait(Bounded.Long));
        child.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        barrier.Abort();
        Bounded.Join(child);
        Assert.Equal(typeof(mp.BrokenBarrierException).FullName, child.Error?.RemoteType);
        Assert.True(barrier.Broken);
    }

    [Fact]
    public void Reset_releases_waiters_with_BrokenBarrierException_and_the_barrier_works_again()
    {
        using var barrier = new mp.Barrier(3);
        var child = new mp.Process(() => barrier.Wait(Bounded.Long));
        child.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        barrier.Reset();
        Bounded.Join(child);
        Assert.Equal(typeof(mp.BrokenBarrierException).FullName, child.Error?.RemoteType);
        Assert.False(barrier.Broken);
        PassWithThreads(barrier, 3);
    }

    [Fact]
    public void An_action_that_throws_breaks_the_barrier_and_reaches_the_last_arriver()
    {
        using var barrier = new mp.Barrier(2, () => throw new InvalidOperationException("action failed"));
        Exception? other = null;
        var waiter = new Thread(() => other = Record.Exception(() => barrier.Wait(Bounded.Long)));
        waiter.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        Assert.Throws<InvalidOperationException>(() => barrier.Wait(Bounded.Long));
        Assert.True(waiter.Join(Bounded.Long));
        Assert.IsType<mp.BrokenBarrierException>(other);
    }

    [Fact]
    public void A_party_killed_while_others_wait_breaks_the_barrier_for_them()
    {
        using var barrier = new mp.Barrier(3);

        // One child waits in the barrier (it is counted), another only holds it; the parent waits too.
        var waiting = new mp.Process(() => barrier.Wait(Bounded.Long));
        waiting.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        using mp.Process holder = LockTests.StartHolder(() => GC.KeepAlive(barrier));

        Exception? parent = null;
        var waiter = new Thread(() => parent = Record.Exception(() => barrier.Wait(Bounded.Long)));
        waiter.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 2, Bounded.Long));

        var clock = Stopwatch.StartNew();
        holder.Kill();
        Assert.True(waiter.Join(Bounded.Long), "the waiter hung after a party died");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"breaking took {clock.Elapsed}");
        Assert.IsType<mp.BrokenBarrierException>(parent);
        Bounded.Join(waiting);
        Assert.Equal(typeof(mp.BrokenBarrierException).FullName, waiting.Error?.RemoteType);
        Bounded.Join(holder);

        barrier.Reset();
        PassWithThreads(barrier, 3);
    }

    [Fact]
    public void A_party_killed_while_counted_as_waiting_leaves_a_barrier_that_resets_cleanly()
    {
        using var barrier = new mp.Barrier(2);
        var waiting = new mp.Process(() => barrier.Wait(Bounded.Long));
        waiting.Start();
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        waiting.Kill();
        Bounded.Join(waiting);

        // The dead party was counted: a fresh waiter must not pass with it, and breaks on its death.
        Assert.Throws<mp.BrokenBarrierException>(() => barrier.Wait(Bounded.Long));
        barrier.Reset();
        PassWithThreads(barrier, 2);
    }

    [Fact]
    public async Task WaitAsync_passes_with_a_child_and_cancellation_breaks_the_barrier()
    {
        using var barrier = new mp.Barrier(2);
        Task<int> mine = barrier.WaitAsync(Bounded.Long);
        var child = new mp.Process(() => barrier.Wait(Bounded.Long));
        child.Start();
        int index = await mine.WaitAsync(Bounded.Long);
        Assert.InRange(index, 0, 1);
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);

        using var cts = new CancellationTokenSource();
        Task<int> cancelled = barrier.WaitAsync(null, cts.Token);
        Assert.True(SpinWait.SpinUntil(() => barrier.NWaiting == 1, Bounded.Long));
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded.Long));
        Assert.True(barrier.Broken);
    }

    [Fact]
    public void Processes_that_end_normally_do_not_break_the_barrier()
    {
        using var barrier = new mp.Barrier(2);
        Bounded.Run(new mp.Process(() => GC.KeepAlive(barrier)));
        Bounded.Run(new mp.Process(() => Environment.Exit(0 * barrier.Parties)));
        PassWithThreads(barrier, 2);
        Assert.False(barrier.Broken);
    }

    private static void PassWithThreads(mp.Barrier barrier, int parties)
    {
        int[] indices = new int[parties];
        Thread[] threads = [.. Enumerable.Range(0, parties).Select(i => new Thread(() => indices[i] = barrier.Wait(Bounded.Long)))];
        foreach (Thread t in threads)
        {
            t.Start();
        }

        foreach (Thread t in threads)
        {
            Assert.True(t.Join(Bounded.Long));
        }

        Assert.Equal(Enumerable.Range(0, parties), indices.Order());
    }
}
