using System.Diagnostics;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Condition between threads and processes: Python's threading.Condition rules.</summary>
public sealed class ConditionTests
{
    /// <summary>Starts a child that waits on <paramref name="cond"/> and then reports <paramref name="id"/>; returns once it is queued.</summary>
    private static mp.Process StartWaiter(mp.Condition cond, int id, mp.Connection reports)
    {
        var child = new mp.Process(() =>
        {
            cond.Acquire();
            bool notified = cond.Wait(Bounded.Long);
            cond.Release();
            reports.Send(notified ? id : -id);
        });
        int before = cond.WaitingCount;
        child.Start();
        Assert.True(SpinWait.SpinUntil(() => cond.WaitingCount > before, Bounded.Long), "the child never queued");

        // Queued, but perhaps still holding the lock: taking it here proves the child sleeps in the wait.
        Assert.True(cond.TryAcquire(Bounded.Long));
        cond.Release();
        return child;
    }

    [Fact]
    public void Waiting_or_notifying_without_the_lock_throws_SynchronizationLockException()
    {
        using var cond = new mp.Condition();
        Assert.Throws<SynchronizationLockException>(() => cond.Wait(TimeSpan.Zero));
        Assert.Throws<SynchronizationLockException>(() => cond.Notify());
        Assert.Throws<SynchronizationLockException>(cond.NotifyAll);

        using var lk = new mp.Lock();
        using var overLock = new mp.Condition(lk);
        Assert.Throws<SynchronizationLockException>(() => overLock.Wait(TimeSpan.Zero));
        using (overLock.EnterScope())
        {
            Assert.False(overLock.Wait(TimeSpan.Zero));
            Assert.True(lk.IsLocked);
        }

        Assert.False(lk.IsLocked);
    }

    [Fact]
    public void The_default_lock_is_an_RLock_fully_released_while_waiting_and_restored_after()
    {
        using var cond = new mp.Condition();
        Assert.Equal("<Condition(<RLock(None, 0)>, 0)>", cond.ToString());
        cond.Acquire();
        Assert.Equal($"<Condition(<RLock({mp.Process.Current.Name}, 1)>, 0)>", cond.ToString());
        cond.Acquire();
        var rl = Assert.IsType<mp.RLock>(cond.Lock);

        var child = new mp.Process(() =>
        {
            // The parent waits with its RLock taken twice: it must be free for the child.
            using (cond.EnterScope())
            {
                cond.NotifyAll();
            }
        });
        child.Start();
        Assert.True(cond.Wait(Bounded.Long), "the child's notification did not arrive");
        Assert.Equal(2, rl.RecursionCount);
        Assert.True(rl.IsHeldByCurrentThread);
        cond.Release();
        cond.Release();
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
    }

    [Fact]
    public void Notify_wakes_at_most_n_waiters_across_processes_longest_waiting_first()
    {
        using var cond = new mp.Condition(new mp.Lock());
        (mp.Connection reports, mp.Connection childEnd) = mp.Pipe.Create();
        using (reports)
        using (childEnd)
        {
            mp.Process[] waiters = [StartWaiter(cond, 1, childEnd), StartWaiter(cond, 2, childEnd), StartWaiter(cond, 3, childEnd)];
            Assert.Equal(3, cond.WaitingCount);

            using (cond.EnterScope())
            {
                cond.Notify();
                Assert.Equal(2, cond.WaitingCount);
            }

            Assert.Equal(1, LockTests.Receive<int>(reports));
            using (cond.EnterScope())
            {
                cond.Notify(5);
                Assert.Equal(0, cond.WaitingCount);
            }

            Assert.Equal([2, 3], new[] { LockTests.Receive<int>(reports), LockTests.Receive<int>(reports) }.Order());
            foreach (mp.Process waiter in waiters)
            {
                Bounded.Join(waiter);
                Assert.Equal(0, waiter.ExitCode);
            }
        }
    }

    [Fact]
    public void A_waiter_that_timed_out_never_takes_a_notification_from_another()
    {
        // The older waiter must time out after the younger one queued and before it can take the lock back; on a loaded
        // machine the first timeout may be too short for that, so the scenario is retried with longer ones.
        for (int milliseconds = 100; milliseconds <= 12_800; milliseconds *= 2)
        {
            if (TimedOutWaiterAndNotification(TimeSpan.FromMilliseconds(milliseconds)) is { } outcome)
            {
                Assert.Equal((false, true), outcome);
                return;
            }
        }

        Assert.Fail("the scenario could not be set up: the machine is too slow");
    }

    /// <summary>(older waiter's result, younger waiter's result), or null when the timing did not give the scenario.</summary>
    private static (bool, bool)? TimedOutWaiterAndNotification(TimeSpan timeout)
    {
        using var cond = new mp.Condition(new mp.Lock());
        bool first = true, second = false;
        var timesOut = new Thread(() =>
        {
            cond.Acquire();
            first = cond.Wait(timeout);
            cond.Release();
        });
        var staysQueued = new Thread(() =>
        {
            cond.Acquire();
            second = cond.Wait(Bounded.Long);
            cond.Release();
        });
        timesOut.Start();
        Assert.True(SpinWait.SpinUntil(() => cond.WaitingCount == 1, Bounded.Long));
        staysQueued.Start();
        Assert.True(SpinWait.SpinUntil(() => cond.WaitingCount + cond.CancelledCount == 2 || !timesOut.IsAlive, Bounded.Long));

        cond.Acquire();
        // The older waiter's timeout passes while the lock is held here: it left the queue but cannot return yet.
        Assert.True(SpinWait.SpinUntil(() => cond.CancelledCount == 1 || !timesOut.IsAlive, Bounded.Long));
        bool scenario = cond.CancelledCount == 1 && cond.WaitingCount == 1;
        cond.Notify();
        cond.Release();
        if (!scenario)
        {
            // The younger waiter may not even have queued yet: let it, then wake it.
            Assert.True(SpinWait.SpinUntil(() => cond.WaitingCount == 1 || !staysQueued.IsAlive, Bounded.Long));
            using (cond.EnterScope())
            {
                cond.NotifyAll();
            }
        }

        Assert.True(timesOut.Join(Bounded.Long));
        Assert.True(staysQueued.Join(Bounded.Long));
        return scenario ? (first, second) : null;
    }

    [Fact]
    public void A_waiter_killed_while_waiting_does_not_swallow_a_notification()
    {
        using var cond = new mp.Condition(new mp.Lock());
        (mp.Connection reports, mp.Connection childEnd) = mp.Pipe.Create();
        using (reports)
        using (childEnd)
        {
            using mp.Process doomed = StartWaiter(cond, 1, childEnd);
            doomed.Kill();
            Bounded.Join(doomed);

            bool? woke = null;
            var survivor = new Thread(() =>
            {
                cond.Acquire();
                woke = cond.Wait(Bounded.Long);
                cond.Release();
            });
            survivor.Start();
            Assert.True(SpinWait.SpinUntil(() => cond.WaitingCount == 2, Bounded.Long));
            using (cond.EnterScope())
            {
                cond.Notify();
            }

            Assert.True(survivor.Join(Bounded.Long));
            Assert.True(woke);
        }
    }

    [Fact]
    public void WaitFor_checks_a_predicate_under_the_lock_across_processes_and_times_out()
    {
        using var cond = new mp.Condition();
        using var shared = new SharedCounter();
        var child = new mp.Process(() =>
        {
            using (cond.EnterScope())
            {
                if (!cond.WaitFor(() => shared.Value == 1, Bounded.Long))
                {
                    Environment.Exit(3);
                }

                shared.Value = 2;
                cond.NotifyAll();
            }
        });
        child.Start();
        using (cond.EnterScope())
        {
            shared.Value = 1;
            cond.NotifyAll();
            Assert.True(cond.WaitFor(() => shared.Value == 2, Bounded.Long));
        }

        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);

        using (cond.EnterScope())
        {
            var clock = Stopwatch.StartNew();
            Assert.False(cond.WaitFor(() => shared.Value == 3, TimeSpan.FromMilliseconds(100)));
            Assert.InRange(clock.Elapsed, TimeSpan.FromMilliseconds(99), TimeSpan.FromSeconds(10));
        }
    }

    [Fact]
    public async Task WaitAsync_over_a_Lock_is_notified_by_a_child_and_cancellation_takes_the_lock_back()
    {
        using var lk = new mp.Lock();
        using var cond = new mp.Condition(lk);
        await cond.Lock.AcquireAsync();
        Task<bool> waiting = cond.WaitAsync(Bounded.Long);
        var child = new mp.Process(() =>
        {
            using (cond.EnterScope())
            {
                cond.Notify();
            }
        });
        child.Start();
        Assert.True(await waiting.WaitAsync(Bounded.Long));
        Assert.True(lk.IsLocked);
        Bounded.Join(child);

        using var cts = new CancellationTokenSource();
        Task<bool> cancelled = cond.WaitAsync(null, cts.Token);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled.WaitAsync(Bounded.Long));
        Assert.True(lk.IsLocked, "a cancelled wait still takes the lock back");
        Assert.Equal(0, cond.WaitingCount);
        cond.Release();
    }
}
