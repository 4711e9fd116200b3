using System.Net;
using System.Runtime.InteropServices;
using System.Security.Authentication;

namespace Multiprocessing.Tests.Twins;

/// <summary>
/// One behavioural suite run against <c>Multiprocessing</c> and <c>Multiprocessing.Dummy</c> (the subclasses below),
/// so the thread twins cannot drift from the process types.
/// </summary>
public abstract class TwinTests(IFlavor flavor)
{
    private static readonly TimeSpan Long = Bounded.Long;

    private IFlavor Flavor { get; } = flavor;

    /// <summary>Runs a blocking call on a thread of its own.</summary>
    private static Task<T> Blocking<T>(Func<T> call) => Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    [Fact]
    public void A_process_runs_its_body_and_reports_its_exit()
    {
        IEvent ran = Flavor.Event();
        IWorker ok = Flavor.Start(() => ran.Set());
        Assert.True(ok.Join(Long));
        Assert.Equal(0, ok.ExitCode);
        Assert.Null(ok.Error);
        Assert.False(ok.IsAlive);
        Assert.True(ran.IsSet);

        IWorker failing = Flavor.Start(() => throw new InvalidOperationException("boom"));
        Assert.True(failing.Join(Long));
        Assert.Equal(1, failing.ExitCode);
        Assert.NotNull(failing.Error);
        Assert.Contains("boom", failing.Error!.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_pipe_carries_objects_and_bytes_both_ways_and_ends_with_end_of_stream()
    {
        (IConnection a, IConnection b) = Flavor.Pipe();
        IWorker echo = Flavor.Start(() =>
        {
            string text = b.Recv<string>();
            b.Send(text + "!");
            byte[] bytes = b.RecvBytes();
            b.SendBytes(bytes);
        });
        a.Send("hi");
        Assert.Equal("hi!", a.Recv<string>());
        a.SendBytes([1, 2, 3]);
        Assert.True(a.Poll(Long));
        var buffer = new byte[2];
        BufferTooShortException tooShort = Assert.Throws<BufferTooShortException>(() => a.RecvBytesInto(buffer));
        Assert.Equal(new byte[] { 1, 2, 3 }, tooShort.Payload);
        Assert.True(echo.Join(Long));

        // The end of the stream, within this party (a child's close would not reach us while we hold its end too).
        (IConnection c, IConnection d) = Flavor.Pipe();
        d.Send(1);
        d.Close();
        Assert.Equal(1, c.Recv<int>());
        Assert.Throws<EndOfStreamException>(() => c.Recv<int>());
        c.Close();
        Assert.True(c.Closed);
        Assert.Throws<ObjectDisposedException>(() => c.Send(1));
        a.Close();
        b.Close();
    }

    [Fact]
    public void A_one_way_pipe_refuses_the_wrong_direction()
    {
        (IConnection reader, IConnection writer) = Flavor.Pipe(duplex: false);
        Assert.True(reader.Readable);
        Assert.False(reader.Writable);
        Assert.False(writer.Readable);
        Assert.Throws<InvalidOperationException>(() => reader.Send(1));
        Assert.Throws<InvalidOperationException>(() => writer.Recv<int>());
        writer.Send(7);
        Assert.Equal(7, reader.Recv<int>());
        Assert.False(reader.Poll());
        reader.Dispose();
        writer.Dispose();
    }

    [Fact]
    public void A_lock_is_not_reentrant_and_may_be_released_by_another_party()
    {
        ILock lk = Flavor.Lock();
        lk.Acquire();
        Assert.True(lk.IsLocked);
        Assert.False(lk.TryAcquire());
        IWorker releaser = Flavor.Start(() => lk.Release());
        Assert.True(releaser.Join(Long));
        Assert.Equal(0, releaser.ExitCode);
        Assert.False(lk.IsLocked);
        Assert.Throws<SynchronizationLockException>(() => lk.Release());
        using (lk.EnterScope())
        {
            Assert.True(lk.IsLocked);
        }

        Assert.False(lk.IsLocked);
        lk.Acquire(); // held: the process lock's free fast path takes the lock before it looks at the timeout
        Assert.Throws<ArgumentOutOfRangeException>(() => lk.TryAcquire(TimeSpan.FromSeconds(-2)));
        lk.Release();
    }

    [Fact]
    public async Task An_rlock_is_reentrant_and_owned_by_its_thread()
    {
        ILock lk = Flavor.RLock();
        lk.Acquire();
        Assert.True(lk.TryAcquire());
        lk.Release();
        Assert.True(lk.IsLocked);
        Exception? fromOther = null;
        var other = new Thread(() => fromOther = Record.Exception(lk.Release));
        other.Start();
        Assert.True(other.Join(Long));
        Assert.IsType<SynchronizationLockException>(fromOther);
        lk.Release();
        Assert.False(lk.IsLocked);
        Assert.Throws<SynchronizationLockException>(() => lk.Release());
        await lk.AcquireAsync();
        Assert.True(lk.IsLocked);
    }

    [Fact]
    public void Semaphores_count_and_a_bounded_one_refuses_to_pass_its_start()
    {
        ISemaphore s = Flavor.Semaphore(2);
        s.Acquire();
        Assert.True(s.TryAcquire());
        Assert.False(s.TryAcquire(TimeSpan.Zero));
        s.Release(3);
        Assert.Equal(3, s.Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Release(0));

        ISemaphore b = Flavor.BoundedSemaphore(1);
        Assert.Throws<SemaphoreFullException>(() => b.Release());
        b.Acquire();
        IWorker releaser = Flavor.Start(() => b.Release());
        Assert.True(releaser.Join(Long));
        Assert.Equal(1, b.Value);
    }

    [Fact]
    public async Task An_event_wakes_a_waiter_in_another_party()
    {
        IEvent go = Flavor.Event();
        IEvent back = Flavor.Event();
        Assert.False(go.Wait(TimeSpan.Zero));
        IWorker worker = Flavor.Start(() =>
        {
            if (go.Wait(Bounded.Long))
            {
                back.Set();
            }
        });
        go.Set();
        Assert.True(back.Wait(Long));
        Assert.True(await back.WaitAsync());
        back.Clear();
        Assert.False(back.IsSet);
        Assert.True(worker.Join(Long));
    }

    [Fact]
    public void A_condition_needs_its_lock_and_wakes_a_notified_waiter()
    {
        ICondition condition = Flavor.Condition(Flavor.Lock());
        Assert.Throws<SynchronizationLockException>(() => condition.Notify());
        ISharedValue<int> flag = Flavor.Value(0);
        IEvent waiting = Flavor.Event();
        IWorker waiter = Flavor.Start(() =>
        {
            using (condition.EnterScope())
            {
                waiting.Set();
                if (condition.WaitFor(() => flag.Value == 1, Bounded.Long))
                {
                    flag.Value = 2;
                }
            }
        });
        Assert.True(waiting.Wait(Long));
        using (condition.EnterScope())
        {
            flag.Value = 1;
            condition.NotifyAll();
        }

        Assert.True(waiter.Join(Long));
        Assert.Equal(2, flag.Value);
        using (condition.EnterScope())
        {
            Assert.False(condition.Wait(TimeSpan.FromMilliseconds(10)));
        }
    }

    [Fact]
    public void A_barrier_releases_its_parties_together_and_breaks_on_timeout()
    {
        IBarrier barrier = Flavor.Barrier(2);
        ISharedValue<int> index = Flavor.Value(-1);
        IWorker other = Flavor.Start(() => index.Value = barrier.Wait(Bounded.Long));
        int mine = barrier.Wait(Long);
        Assert.True(other.Join(Long));
        Assert.Equal(1, mine + index.Value); // indexes 0 and 1, one each

        IBarrier lonely = Flavor.Barrier(2);
        Assert.Throws<BrokenBarrierException>(() => lonely.Wait(TimeSpan.FromMilliseconds(20)));
        Assert.True(lonely.Broken);
        Assert.Throws<BrokenBarrierException>(() => lonely.Wait(TimeSpan.Zero));
        lonely.Reset();
        Assert.False(lonely.Broken);
        lonely.Abort();
        Assert.Throws<BrokenBarrierException>(() => lonely.Wait());
    }

    [Fact]
    public void Shared_values_and_arrays_are_seen_by_the_other_party()
    {
        ISharedValue<int> counter = Flavor.Value(5);
        ISharedArray<int> array = Flavor.Array(3);
        IWorker worker = Flavor.Start(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                counter.Increment();
            }

            array.Set(1, 42);
        });
        for (int i = 0; i < 100; i++)
        {
            counter.Add(1);
        }

        Assert.True(worker.Join(Long));
        Assert.Equal(205, counter.Value);
        Assert.Equal(new[] { 0, 42, 0 }, array.ToArray());
        Assert.Equal(3, array.Length);
        Assert.Equal(205, counter.Exchange(1));
        Assert.Equal(1, counter.CompareExchange(9, 1));
        Assert.Equal(9, counter.Value);
        using (counter.GetLock().EnterScope())
        {
            Assert.True(counter.GetLock().IsLocked);
        }

        Assert.Throws<IndexOutOfRangeException>(() => array.Get(3));
    }

    [Fact]
    public async Task A_queue_is_fifo_bounded_throws_the_queue_exceptions_and_refuses_use_after_close()
    {
        IQueue<int> queue = Flavor.Queue(maxSize: 2);
        queue.Put(1);
        Assert.True(queue.TryPut(2));
        Assert.True(queue.IsFull);
        Assert.False(queue.TryPut(3));
        Assert.Throws<QueueFullException>(() => queue.Put(3, TimeSpan.FromMilliseconds(10)));
        Assert.Equal(2, queue.Count);
        Assert.Equal(1, queue.Get());
        Assert.Equal(2, await queue.GetAsync());
        Assert.True(queue.IsEmpty);
        Assert.False(queue.TryGet(out _));
        Assert.Throws<QueueEmptyException>(() => queue.Get(TimeSpan.FromMilliseconds(10)));
        queue.Close();
        Assert.Throws<ObjectDisposedException>(() => queue.Put(4));
    }

    [Fact]
    public void A_joinable_queue_carries_items_to_a_worker_and_joins_when_all_are_done()
    {
        IJoinableQueue<int> tasks = Flavor.JoinableQueue();
        IQueue<int> results = Flavor.Queue();
        Assert.Throws<InvalidOperationException>(tasks.TaskDone);
        IWorker worker = Flavor.Start(() =>
        {
            for (int i = 0; i < 3; i++)
            {
                results.Put(tasks.Get(Bounded.Long) * 10);
                tasks.TaskDone();
            }
        });
        tasks.Put(1);
        tasks.Put(2);
        tasks.Put(3);
        Assert.True(tasks.Join(Long));
        Assert.Equal(60, results.Get(Long) + results.Get(Long) + results.Get(Long));
        Assert.True(worker.Join(Long));
    }

    [Fact]
    public void A_manager_makes_lists_dictionaries_namespaces_and_locks_a_worker_can_change()
    {
        using IDisposable manager = Flavor.Manager(out var list, out var dictionary, out var ns, out var lk);
        IList<int> numbers = list([3, 1, 2]);
        IDictionary<string, int> map = dictionary();
        ILock guard = lk();
        IWorker worker = Flavor.Start(() =>
        {
            using (guard.EnterScope())
            {
                numbers.Add(4);
                map["four"] = 4;
            }
        });
        Assert.True(worker.Join(Long));
        Assert.Equal(0, worker.ExitCode);
        Assert.Equal([3, 1, 2, 4], numbers.ToArray());
        Assert.Equal("[3, 1, 2, 4]", numbers.ToString());
        Assert.Equal(4, map["four"]);
        dynamic space = ns();
        space.x = 5;
        Assert.Equal(5, (int)space.x);
        Assert.False(guard.IsLocked);
    }

    [Fact]
    public void Wait_returns_exactly_the_ready_connections_in_the_order_given()
    {
        (IConnection First, IConnection Second)[] pipes = [.. Enumerable.Range(0, 3).Select(_ => Flavor.Pipe())];
        object[] readers = [.. pipes.Select(p => p.Second)];
        Assert.Empty(Flavor.Wait(readers, TimeSpan.Zero));

        pipes[2].First.Send("two");
        pipes[0].First.SendBytes([0]);
        Assert.Equal([readers[0], readers[2]], Flavor.Wait(readers, Long));
        Assert.Equal([readers[2], readers[0]], Flavor.Wait([readers[2], readers[1], readers[0]], TimeSpan.Zero));

        pipes[1].First.Close(); // the end of the stream is ready too
        Assert.Equal([readers[1]], Flavor.Wait([readers[1]], Long)); // a child being forked elsewhere may hold the socket a moment
        Assert.Equal(readers, Flavor.Wait(readers, TimeSpan.Zero));
        Assert.Equal("two", pipes[2].Second.Recv<string>());
        Assert.Equal([readers[0], readers[1]], Flavor.Wait(readers, TimeSpan.Zero));
        foreach ((IConnection first, IConnection second) in pipes)
        {
            first.Dispose();
            second.Dispose();
        }
    }

    [Fact]
    public void Wait_with_a_zero_or_negative_timeout_only_polls_and_returns_nothing_once_the_timeout_passes()
    {
        (IConnection a, IConnection b) = Flavor.Pipe();
        Assert.Empty(Flavor.Wait([a, b], TimeSpan.Zero));
        Assert.Empty(Flavor.Wait([a, b], TimeSpan.FromSeconds(-5)));
        Assert.Empty(Flavor.Wait([a, b], TimeSpan.MinValue));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.Empty(Flavor.Wait([a, b], TimeSpan.FromMilliseconds(100)));
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"returned after {clock.Elapsed}");
        Assert.Empty(Flavor.Wait([], TimeSpan.FromMilliseconds(10)));

        a.SendBytes([1]);
        Assert.Equal([b], Flavor.Wait([a, b], Long));
        Assert.Equal([b], Flavor.Wait([a, b], TimeSpan.FromSeconds(-5)));
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public async Task Wait_wakes_for_a_message_or_for_a_sentinel_whichever_comes()
    {
        (IConnection a, IConnection b) = Flavor.Pipe();
        IEvent go = Flavor.Event();
        IEvent finish = Flavor.Event();
        using IWorker worker = Flavor.Start(() =>
        {
            go.Wait();
            b.Send("hi");
            finish.Wait();
        });
        SafeHandle sentinel = worker.Sentinel;
        Assert.Empty(Flavor.Wait([a, worker.Process, sentinel], TimeSpan.Zero));

        Task<IReadOnlyList<object>> message = Blocking(() => Flavor.Wait([a, sentinel], Long));
        go.Set();
        Assert.Equal([a], await message.WaitAsync(Long));
        Assert.Equal("hi", a.Recv<string>());

        Task<IReadOnlyList<object>> ended = Blocking(() => Flavor.Wait([a, sentinel], Long));
        finish.Set();
        Assert.Equal([sentinel], await ended.WaitAsync(Long));
        Assert.Equal([worker.Process], Flavor.Wait([a, worker.Process], Long));
        Assert.True(worker.Join(Long));
        Assert.Equal([worker.Process, sentinel], Flavor.Wait([a, worker.Process, sentinel], TimeSpan.Zero));
        a.Dispose();
        b.Dispose();
    }

    [Fact]
    public void A_sentinel_made_after_the_end_is_ready_and_goes_with_the_process()
    {
        IWorker worker = Flavor.Start(() => { });
        Assert.True(worker.Join(Long));
        SafeHandle sentinel = worker.Sentinel;
        Assert.Same(sentinel, worker.Sentinel);
        Assert.Equal([sentinel], Flavor.Wait([sentinel], TimeSpan.Zero));

        worker.Dispose();
        Assert.True(sentinel.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => worker.Sentinel);
        Assert.Throws<ObjectDisposedException>(() => Flavor.Wait([worker.Process], TimeSpan.Zero));
        Assert.Throws<ObjectDisposedException>(() => Flavor.Wait([sentinel], TimeSpan.Zero));
    }

    [Fact]
    public void Wait_refuses_what_it_cannot_wait_on()
    {
        (IConnection a, IConnection b) = Flavor.Pipe();
        Assert.Throws<ArgumentException>(() => Flavor.Wait([b, "not a connection"], TimeSpan.Zero));
        Assert.Throws<ArgumentException>(() => Flavor.Wait([b, null!], TimeSpan.Zero));
        Assert.Throws<ArgumentNullException>(() => Flavor.Wait(null!, TimeSpan.Zero));

        using IWorker unstarted = Flavor.Create(() => { });
        Assert.Throws<InvalidOperationException>(() => Flavor.Wait([unstarted.Process], TimeSpan.Zero));
        Assert.Throws<InvalidOperationException>(() => unstarted.Sentinel);

        a.Close();
        Assert.Throws<ObjectDisposedException>(() => Flavor.Wait([b, a], TimeSpan.Zero));
        b.Close();
    }

    [Fact]
    public void A_manager_server_serves_a_named_queue_to_a_process_that_connects_with_the_key()
    {
        byte[] key = "abracadabra"u8.ToArray();
        IQueue<int> queue = Flavor.Queue();
        using IDisposable server = Flavor.ManagerServer(new IPEndPoint(IPAddress.Loopback, 0), key, "get_queue", queue, out EndPoint address);
        Action<EndPoint, byte[], string, int> put = Flavor.RemotePut;
        IWorker client = Flavor.Start(() => put(address, key, "get_queue", 42));
        Assert.True(client.Join(Long));
        Assert.Equal(0, client.ExitCode);
        Assert.Equal(42, queue.Get(Long));

        put(address, key, "get_queue", 43); // a client in this process too
        Assert.Equal(43, queue.Get(Long));
        Assert.Throws<AuthenticationException>(() => put(address, "wrong"u8.ToArray(), "get_queue", 1));
        RemoteException missing = Assert.Throws<RemoteException>(() => put(address, key, "nothing", 1));
        Assert.Equal(typeof(KeyNotFoundException).FullName, missing.RemoteType);
        Assert.True(queue.IsEmpty);

        server.Dispose();
        Assert.ThrowsAny<IOException>(() => put(address, key, "get_queue", 1));
    }

    [Fact]
    public void A_manager_without_a_server_refuses_what_only_a_server_does()
    {
        (IDisposable manager, Action serve, Action start, Action registerNamed, Action getMissing, Action createUnregistered, Action registerClass) = Flavor.LocalManager();
        using (manager)
        {
            Assert.Throws<InvalidOperationException>(serve);
            Assert.Throws<InvalidOperationException>(start);
            Assert.Throws<InvalidOperationException>(registerNamed);
            RemoteException missing = Assert.Throws<RemoteException>(getMissing);
            Assert.Equal(typeof(KeyNotFoundException).FullName, missing.RemoteType);
            RemoteException unregistered = Assert.Throws<RemoteException>(createUnregistered);
            Assert.Equal(typeof(InvalidOperationException).FullName, unregistered.RemoteType);
            Assert.Throws<ArgumentException>(registerClass);
        }
    }

    [Fact]
    public void A_pool_maps_applies_and_reports_a_failure()
    {
        Assert.Equal(Enumerable.Range(0, 50).Select(i => i * i), Flavor.Map(i => i * i, Enumerable.Range(0, 50)));
        Assert.Equal(7, Flavor.Apply(() => 7));
        RemoteException error = Assert.Throws<RemoteException>(() => Flavor.Map(i => i == 3 ? throw new InvalidOperationException("three") : i, Enumerable.Range(0, 10)));
        Assert.Contains("three", error.Message, StringComparison.Ordinal);
    }
}

/// <summary>The twin suite on processes.</summary>
public sealed class ProcessTwinTests() : TwinTests(new ProcessFlavor());

/// <summary>The twin suite on threads.</summary>
public sealed class DummyTwinTests() : TwinTests(new DummyFlavor());
