using System.Diagnostics;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Semaphore, BoundedSemaphore and Event between threads and processes.</summary>
public sealed class SemaphoreEventTests
{
    [Fact]
    public void A_semaphore_counts_and_may_be_released_past_its_start_value()
    {
        using var s = new mp.Semaphore(2);
        Assert.True(s.TryAcquire());
        s.Acquire();
        Assert.Equal(0, s.Value);
        Assert.False(s.TryAcquire(TimeSpan.Zero));
        s.Release(3);
        Assert.Equal(3, s.Value);
        using (s.EnterScope())
        {
            Assert.Equal(2, s.Value);
        }

        Assert.Equal(3, s.Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Release(0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.Semaphore(-1));
    }

    [Fact]
    public void A_bounded_semaphore_refuses_to_pass_its_start_value()
    {
        using var s = new mp.BoundedSemaphore(2);
        Assert.Throws<SemaphoreFullException>(() => s.Release());
        s.Acquire();
        s.Acquire();
        Assert.Throws<SemaphoreFullException>(() => s.Release(3));
        Assert.Equal(0, s.Value);
        s.Release(2);
        Assert.Equal(2, s.Value);

        var child = new mp.Process(() => s.Release());
        Bounded.Run(child);
        Assert.Equal(typeof(SemaphoreFullException).FullName, child.Error?.RemoteType);
    }

    [Fact]
    public void A_child_releases_a_semaphore_parent_threads_wait_on()
    {
        using var s = new mp.Semaphore(0);
        int taken = 0;
        Thread[] waiters = [.. Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            if (s.TryAcquire(Bounded.Long))
            {
                Interlocked.Increment(ref taken);
            }
        }))];
        foreach (Thread t in waiters)
        {
            t.Start();
        }

        Bounded.Run(new mp.Process(() => s.Release(2)));
        foreach (Thread t in waiters)
        {
            Assert.True(t.Join(Bounded.Long));
        }

        Assert.Equal(2, taken);
        Assert.Equal(0, s.Value);
    }

    [Fact]
    public void Semaphore_timeouts_are_honoured_and_zero_does_not_block()
    {
        using var s = new mp.Semaphore(0);
        var clock = Stopwatch.StartNew();
        Assert.False(s.TryAcquire(TimeSpan.Zero));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1));
        clock.Restart();
        Assert.False(s.TryAcquire(TimeSpan.FromMilliseconds(100)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(99), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task Semaphore_AcquireAsync_completes_on_a_release_from_a_child_and_can_be_cancelled()
    {
        using var s = new mp.Semaphore(0);
        using var cts = new CancellationTokenSource();
        Task cancelled = s.AcquireAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded.Long));

        Task waiting = s.AcquireAsync();
        Bounded.Run(new mp.Process(() => s.Release()));
        await waiting.WaitAsync(Bounded.Long);
        Assert.Equal(0, s.Value); // the cancelled acquire took nothing
    }

    [Fact]
    public void An_event_set_in_a_child_wakes_waiters_in_the_parent_and_stays_set_until_cleared()
    {
        using var e = new mp.Event();
        Assert.False(e.IsSet);
        Assert.False(e.Wait(TimeSpan.Zero));
        bool[] woke = new bool[2];
        Thread[] waiters = [.. Enumerable.Range(0, 2).Select(i => new Thread(() => woke[i] = e.Wait(Bounded.Long)))];
        foreach (Thread t in waiters)
        {
            t.Start();
        }

        var child = new mp.Process(e.Set);
        Bounded.Run(child);
        foreach (Thread t in waiters)
        {
            Assert.True(t.Join(Bounded.Long));
        }

        Assert.Equal([true, true], woke);
        Assert.True(e.IsSet);
        Assert.True(e.Wait(TimeSpan.Zero));
        e.Clear();
        var clock = Stopwatch.StartNew();
        Assert.False(e.Wait(TimeSpan.FromMilliseconds(100)));
        Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(99), TimeSpan.FromSeconds(10));
    }

    [Fact]
    public void A_child_waits_for_an_event_the_parent_sets()
    {
        using var go = new mp.Event();
        using var done = new mp.Event();
        var child = new mp.Process(() =>
        {
            if (go.Wait(Bounded.Long))
            {
                done.Set();
            }
        });
        child.Start();
        go.Set();
        Assert.True(done.Wait(Bounded.Long));
        Bounded.Join(child);
    }

    [Fact]
    public async Task Event_WaitAsync_completes_on_Set_and_can_be_cancelled_or_time_out()
    {
        using var e = new mp.Event();
        using var cts = new CancellationTokenSource();
        Task<bool> cancelled = e.WaitAsync(cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded.Long));
        Assert.False(await e.WaitAsync(TimeSpan.FromMilliseconds(20)).WaitAsync(Bounded.Long));

        Task<bool> waiting = e.WaitAsync();
        Bounded.Run(new mp.Process(e.Set));
        Assert.True(await waiting.WaitAsync(Bounded.Long));
        Assert.True(await e.WaitAsync()); // set: at once
    }

    [Fact]
    public void Primitives_sent_through_a_connection_to_a_running_child_are_the_same_primitives()
    {
        using var e = new mp.Event();
        using var s = new mp.BoundedSemaphore(1);
        using var lk = new mp.Lock();
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using (parentEnd)
        using (childEnd)
        {
            var child = new mp.Process(() =>
            {
                var (ev, sem, l) = childEnd.Recv<(mp.Event, mp.BoundedSemaphore, mp.Lock)>();
                sem.Acquire();
                l.Release();
                ev.Set();
            });
            child.Start();
            lk.Acquire();
            parentEnd.Send((e, s, lk));
            Assert.True(e.Wait(Bounded.Long));
            Bounded.Join(child);
            Assert.Equal(0, child.ExitCode);
            Assert.Equal(0, s.Value);
            Assert.False(lk.IsLocked);
        }
    }
}
