using System.Diagnostics;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Lock and RLock between threads and processes, including holders that are killed.</summary>
public sealed class LockTests
{
    internal static T Receive<T>(mp.Connection connection)
    {
        Assert.True(connection.Poll(Bounded.Long), "no message arrived");
        return connection.Recv<T>();
    }

    /// <summary>Starts a child that runs <paramref name="acquire"/>, reports "held" and sleeps until killed.</summary>
    internal static mp.Process StartHolder(Action acquire)
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using (parentEnd)
        {
            var holder = new mp.Process(() =>
            {
                acquire();
                childEnd.Send("held");
                Thread.Sleep(Timeout.Infinite);
            });
            holder.Start();
            childEnd.Dispose();
            Assert.Equal("held", Receive<string>(parentEnd));
            return holder;
        }
    }

    [Fact]
    public void A_lock_is_not_recursive_and_any_thread_may_release_it()
    {
        using var lk = new mp.Lock();
        Assert.False(lk.IsLocked);
        lk.Acquire();
        Assert.True(lk.IsLocked);
        Assert.False(lk.TryAcquire(), "a Lock is not recursive");
        var other = new Thread(lk.Release);
        other.Start();
        Assert.True(other.Join(Bounded.Long));
        Assert.False(lk.IsLocked);

        using (lk.EnterScope())
        {
            Assert.True(lk.IsLocked);
        }

        Assert.False(lk.IsLocked);
    }

    [Fact]
    public void Releasing_an_unlocked_lock_throws_SynchronizationLockException()
    {
        using var lk = new mp.Lock();
        Assert.Throws<SynchronizationLockException>(lk.Release);
        lk.Acquire();
        lk.Release();
        Assert.Throws<SynchronizationLockException>(lk.Release);
        Assert.False(lk.IsLocked);
    }

    [Fact]
    public void A_child_releases_a_lock_the_parent_holds_and_wakes_the_parent_blocked_on_it()
    {
        using var lk = new mp.Lock();
        lk.Acquire();
        var child = new mp.Process(() =>
        {
            if (!lk.IsLocked)
            {
                Environment.Exit(3); // the child must see the parent's hold
            }

            lk.Release();
        });
        child.Start();
        Assert.True(lk.TryAcquire(Bounded.Long), "the child's release did not wake the parent");
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
        lk.Release();
    }

    [Fact]
    public void A_timeout_is_honoured_while_another_process_holds_the_lock_and_zero_does_not_block()
    {
        using var lk = new mp.Lock();
        using mp.Process holder = StartHolder(lk.Acquire);
        try
        {
            Assert.True(lk.IsLocked);
            var clock = Stopwatch.StartNew();
            Assert.False(lk.TryAcquire(TimeSpan.Zero));
            Assert.False(lk.TryAcquire(TimeSpan.FromMilliseconds(100)));
            Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(99), TimeSpan.FromSeconds(10));
            Assert.Throws<ArgumentOutOfRangeException>(() => lk.TryAcquire(TimeSpan.FromMilliseconds(-5)));
        }
        finally
        {
            holder.Kill();
            Bounded.Join(holder);
        }
    }

    [Fact]
    public void The_next_acquirer_after_a_killed_holder_gets_AbandonedMutexException_and_owns_the_lock()
    {
        using var lk = new mp.Lock();
        using mp.Process holder = StartHolder(lk.Acquire);
        holder.Kill();
        Bounded.Join(holder);

        Assert.Throws<AbandonedMutexException>(() => lk.TryAcquire(Bounded.Long));
        Assert.True(lk.IsLocked, "the abandoned lock now belongs to the caller");
        Assert.False(lk.TryAcquire(TimeSpan.Zero));
        lk.Release();
        Assert.True(lk.TryAcquire(TimeSpan.Zero), "after the release it works as before");
        lk.Release();
    }

    [Fact]
    public void Waiters_blocked_on_a_holder_that_is_killed_wake_and_one_gets_AbandonedMutexException()
    {
        using var lk = new mp.Lock();
        using mp.Process holder = StartHolder(lk.Acquire);
        var outcomes = new System.Collections.Concurrent.ConcurrentQueue<string>();
        Thread[] waiters = [.. Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            try
            {
                outcomes.Enqueue(lk.TryAcquire(Bounded.Long) ? "acquired" : "timed out");
            }
            catch (AbandonedMutexException)
            {
                outcomes.Enqueue("abandoned");
            }

            lk.Release();
        }))];
        foreach (Thread waiter in waiters)
        {
            waiter.Start();
        }

        holder.Kill();
        foreach (Thread waiter in waiters)
        {
            Assert.True(waiter.Join(Bounded.Long), "a waiter hung after the holder died");
        }

        Bounded.Join(holder);
        Assert.Equal(["abandoned", "acquired"], outcomes.Order());
        Assert.False(lk.IsLocked);
    }

    [Fact]
    public void A_lock_protects_a_counter_incremented_by_4_processes_of_2_threads()
    {
        const int Processes = 4, Threads = 2, Increments = 20_000;
        using var lk = new mp.Lock();
        using var counter = new SharedCounter();
        var workers = Enumerable.Range(0, Processes).Select(_ => new mp.Process(() =>
        {
            Thread[] threads = [.. Enumerable.Range(0, Threads).Select(_ => new Thread(() =>
            {
                counter.ArriveAndSpinUntil(Processes * Threads);
                for (int i = 0; i < Increments; i++)
                {
                    lk.Acquire();
                    counter.IncrementUnsafely();
                    lk.Release();
                }
            }))];
            foreach (Thread t in threads)
            {
                t.Start();
            }

            foreach (Thread t in threads)
            {
                t.Join();
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(Bounded.Join);
        Assert.All(workers, w => Assert.Equal(0, w.ExitCode));
        Assert.Equal(Processes * Threads * Increments, counter.Value);
        Assert.False(lk.IsLocked);
    }

    [Fact]
    public async Task AcquireAsync_completes_when_a_child_releases_and_cancellation_leaves_the_lock_alone()
    {
        using var lk = new mp.Lock();
        lk.Acquire();
        using var cts = new CancellationTokenSource();
        Task cancelled = lk.AcquireAsync(cts.Token);
        Task waiting = lk.AcquireAsync();
        Assert.False(cancelled.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded.Long));
        Assert.False(waiting.IsCompleted);

        var child = new mp.Process(lk.Release);
        Bounded.Run(child);
        await waiting.WaitAsync(Bounded.Long);
        Assert.True(lk.IsLocked);
        lk.Release();
        await lk.AcquireAsync(); // free: completes at once
        lk.Release();
    }

    [Fact]
    public void An_RLock_is_recursive_for_its_owner_thread_only()
    {
        using var rl = new mp.RLock();
        Assert.Equal("<RLock(None, 0)>", rl.ToString());
        rl.Acquire();
        Assert.True(rl.TryAcquire(TimeSpan.Zero));
        using (rl.EnterScope())
        {
            Assert.Equal(3, rl.RecursionCount);
            Assert.Equal($"<RLock({mp.Process.Current.Name}, 3)>", rl.ToString());
        }

        bool otherAcquired = true;
        Exception? otherRelease = null;
        var other = new Thread(() =>
        {
            otherAcquired = rl.TryAcquire(TimeSpan.FromMilliseconds(20));
            otherRelease = Record.Exception(rl.Release);
        });
        other.Start();
        Assert.True(other.Join(Bounded.Long));
        Assert.False(otherAcquired);
        Assert.IsType<SynchronizationLockException>(otherRelease);

        rl.Release();
        Assert.True(rl.IsLocked);
        rl.Release();
        Assert.False(rl.IsLocked);
        Assert.Throws<SynchronizationLockException>(rl.Release);
    }

    [Fact]
    public void An_RLock_held_by_the_parent_cannot_be_taken_or_released_by_a_child()
    {
        using var rl = new mp.RLock();
        rl.Acquire();
        var child = new mp.Process(() =>
        {
            if (rl.TryAcquire(TimeSpan.FromMilliseconds(20)))
            {
                Environment.Exit(3);
            }

            rl.Release(); // throws: not the owner
        });
        Bounded.Run(child);
        Assert.Equal(1, child.ExitCode);
        Assert.Equal(typeof(SynchronizationLockException).FullName, child.Error?.RemoteType);
        Assert.Equal(1, rl.RecursionCount);
        rl.Release();

        var taker = new mp.Process(() =>
        {
            rl.Acquire();
            rl.Acquire();
            rl.Release();
            rl.Release();
        });
        Bounded.Run(taker);
        Assert.Equal(0, taker.ExitCode);
        Assert.False(rl.IsLocked);
    }

    [Fact]
    public void An_RLock_whose_owner_is_killed_is_abandoned_to_the_next_acquirer()
    {
        using var rl = new mp.RLock();
        using mp.Process holder = StartHolder(() =>
        {
            rl.Acquire();
            rl.Acquire();
        });
        Assert.Equal("<RLock(SomeOtherProcess, 2)>", rl.ToString());
        Exception? caught = null;
        var waiter = new Thread(() => caught = Record.Exception(rl.Acquire));
        waiter.Start();
        holder.Kill();
        Assert.True(waiter.Join(Bounded.Long), "the waiter hung after the owner died");
        Assert.IsType<AbandonedMutexException>(caught);
        Bounded.Join(holder);

        // The waiter's thread owns it now, once.
        Assert.Equal(1, rl.RecursionCount);
        Assert.False(rl.IsHeldByCurrentThread);
        Assert.False(rl.TryAcquire(TimeSpan.Zero));
    }

    [Fact]
    public void A_negative_timeout_is_refused_even_when_the_lock_is_free()
    {
        using var lk = new mp.Lock();
        using var rlock = new mp.RLock();
        Assert.Throws<ArgumentOutOfRangeException>(() => lk.TryAcquire(TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => rlock.TryAcquire(TimeSpan.FromSeconds(-2)));
        Assert.False(lk.IsLocked);
        Assert.True(lk.TryAcquire(Timeout.InfiniteTimeSpan));
        lk.Release();
    }
}
