using System.Net;
using System.Security.Authentication;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>A counter shared through a manager (a custom registered type).</summary>
public interface ICounter
{
    /// <summary>Adds one and returns the new value.</summary>
    int Increment();

    /// <summary>The current value.</summary>
    int Value { get; }

    /// <summary>Throws, to test exceptions through proxies.</summary>
    void Fail(string message);

    /// <summary>A counter of its own, kept by the server: returned as a proxy since ICounter is registered.</summary>
    ICounter Sibling();

    /// <summary>Out parameters travel back.</summary>
    bool TryRead(out int value);
}

/// <summary>The server-side counter.</summary>
public sealed class Counter : ICounter
{
    private Counter? _sibling;

    /// <inheritdoc/>
    public int Value { get; private set; }

    /// <inheritdoc/>
    public int Increment() => ++Value;

    /// <inheritdoc/>
    public void Fail(string message) => throw new InvalidOperationException(message);

    /// <inheritdoc/>
    public ICounter Sibling() => _sibling ??= new Counter();

    /// <inheritdoc/>
    public bool TryRead(out int value)
    {
        value = Value;
        return true;
    }
}

/// <summary>Managers: objects in a server process, used from several processes through proxies.</summary>
public sealed class ManagerTests
{
    [Fact]
    public void Iterating_a_list_or_dictionary_proxy_sees_one_consistent_state_even_while_it_changes()
    {
        using var manager = new mp.Manager();
        mp.ListProxy<int> list = manager.List(Enumerable.Range(0, 100));
        IDictionary<string, int> dict = manager.Dictionary<string, int>();
        for (int i = 0; i < 50; i++)
        {
            dict[$"k{i}"] = i;
        }

        // Changing the shared objects in the middle of the loops affects neither loop: each sees the state it began with.
        var seen = new List<int>();
        foreach (int item in list)
        {
            seen.Add(item);
            if (item == 10)
            {
                list.Add(1000);
                list.RemoveAt(0);
            }
        }

        Assert.Equal(Enumerable.Range(0, 100), seen);
        Assert.Equal(100, list.Count);
        Assert.Equal(1, list[0]);
        Assert.Equal(1000, list[99]);

        var keys = new List<string>();
        foreach (KeyValuePair<string, int> pair in dict)
        {
            keys.Add(pair.Key);
            Assert.Equal(pair.Key, $"k{pair.Value}");
            if (keys.Count == 1)
            {
                dict["late"] = -1;
            }
        }

        Assert.Equal(50, keys.Count);
        Assert.DoesNotContain("late", keys);
        Assert.Equal(51, dict.Count);
    }

    [Fact]
    public void The_server_exits_by_itself_when_its_owner_is_killed()
    {
        (mp.Connection reports, mp.Connection childEnd) = mp.Pipe.Create();
        using (reports)
        {
            var owner = new mp.Process(() =>
            {
                var manager = new mp.Manager();
                childEnd.Send(manager.ServerProcess!.Pid!.Value);
                Thread.Sleep(Timeout.Infinite); // until killed: its manager is never disposed
            });
            owner.Start();
            childEnd.Close();
            Assert.True(reports.Poll(Bounded.Long), "the owner never reported its manager's server");
            int server = reports.Recv<int>();
            owner.Kill();
            Bounded.Join(owner);
            Assert.True(Bounded.ProcessEnds(server, Bounded.Long), $"the manager server {server} outlived its killed owner");
        }
    }

    [Fact]
    public void A_list_is_shared_with_a_child_and_prints_like_Pythons()
    {
        using var manager = new mp.Manager();
        mp.ListProxy<int> list = manager.List(Enumerable.Range(0, 10));
        list.Reverse();
        Assert.Equal("[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]", list.ToString());

        using var child = new mp.Process(() =>
        {
            list.Add(100);
            list.Sort();
        });
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(11, list.Count);
        Assert.Equal(100, list[10]);
        Assert.Equal(Enumerable.Range(0, 10).Append(100), list);
        list.Extend([200, 300]);
        Assert.Equal(13, list.Count);
    }

    [Fact]
    public void A_dictionary_and_a_namespace_written_in_a_child_are_read_in_the_parent()
    {
        using var manager = new mp.Manager();
        IDictionary<string, int> dictionary = manager.Dictionary<string, int>();
        dynamic ns = manager.Namespace();
        ns.X = 10;
        dictionary["a"] = 1;

        object nsObject = ns;
        using var child = new mp.Process(() =>
        {
            dynamic remote = nsObject;
            dictionary["b"] = (int)remote.X + 1;
            remote.Y = "from the child";
        });
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(11, dictionary["b"]);
        Assert.True(dictionary.TryGetValue("a", out int a) && a == 1);
        Assert.False(dictionary.ContainsKey("z"));
        Assert.Equal(["a", "b"], dictionary.Keys.Order());
        Assert.Equal("from the child", (string)ns.Y);
        Assert.Equal("Namespace(X=10, Y='from the child')", ns.ToString());
        var missing = Assert.Throws<mp.RemoteException>(() => dictionary["z"]);
        Assert.Equal(typeof(KeyNotFoundException).FullName, missing.RemoteType);
        Assert.ThrowsAny<Microsoft.CSharp.RuntimeBinder.RuntimeBinderException>(() => (object)ns.Nothing);
    }

    [Fact]
    public void A_registered_type_is_used_through_a_generated_proxy_and_its_exceptions_arrive_as_RemoteException()
    {
        using var manager = new mp.Manager();
        manager.Register<ICounter>(() => new Counter());
        ICounter counter = manager.Create<ICounter>();
        Assert.IsAssignableFrom<mp.Managers.ManagerProxy>(counter);
        Assert.Equal(1, counter.Increment());

        using var child = new mp.Process(() =>
        {
            for (int i = 0; i < 5; i++)
            {
                counter.Increment();
            }
        });
        Bounded.Run(child);
        Assert.Equal(6, counter.Value);
        Assert.True(counter.TryRead(out int read));
        Assert.Equal(6, read);

        var ex = Assert.Throws<mp.RemoteException>(() => counter.Fail("nope"));
        Assert.Equal(typeof(InvalidOperationException).FullName, ex.RemoteType);
        Assert.Equal("nope", ex.Message);
        Assert.Contains(nameof(Counter.Fail), ex.RemoteStackTrace, StringComparison.Ordinal); // the server's stack, not ours
        Assert.Equal(7, counter.Increment()); // the manager keeps serving

        // A method returning a registered interface returns a proxy to the server's object, not a copy.
        ICounter sibling = counter.Sibling();
        Assert.IsAssignableFrom<mp.Managers.ManagerProxy>(sibling);
        sibling.Increment();
        Assert.Equal(1, counter.Sibling().Value);
        Assert.Throws<ArgumentException>(() => manager.Register<Counter>(() => new Counter()));
        Assert.Throws<mp.RemoteException>(() => manager.Create<IDisposable>());
    }

    [Fact]
    public void Proxies_travel_through_pipes_and_nested_proxies_work()
    {
        using var manager = new mp.Manager();
        mp.ListProxy<IDictionary<string, int>> rows = manager.List<IDictionary<string, int>>();
        rows.Add(manager.Dictionary<string, int>());
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            using var child = new mp.Process(() =>
            {
                mp.ListProxy<IDictionary<string, int>> received = b.Recv<mp.ListProxy<IDictionary<string, int>>>();
                received[0]["seen"] = 42;
            });
            child.Start();
            a.Send(rows);
            Bounded.Join(child);
            Assert.Equal(0, child.ExitCode);
        }

        Assert.Equal(42, rows[0]["seen"]);
    }

    [Fact]
    public void A_proxy_travels_through_a_process_queue_to_a_child_that_writes_into_it()
    {
        using var manager = new mp.Manager();
        IDictionary<string, int> shared = manager.Dictionary<string, int>();
        using var queue = new mp.Queue<IDictionary<string, int>>();
        using var child = new mp.Process(() => queue.Get(Bounded.Long)["from child"] = 7);
        child.Start();
        queue.Put(shared);
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(7, shared["from child"]);
    }

    [Fact]
    public void A_remote_manager_serves_named_objects_to_clients_in_two_other_processes_and_refuses_a_wrong_key()
    {
        byte[] key = "abracadabra"u8.ToArray();
        using var server = new mp.Manager(new IPEndPoint(IPAddress.Loopback, 0), key);
        var jobs = new Counter();
        server.Register<ICounter>("jobs", () => jobs);
        server.Start();
        EndPoint address = server.Address;

        var clients = Enumerable.Range(0, 2).Select(_ => new mp.Process(() =>
        {
            using mp.Manager remote = mp.Manager.Connect(address, key);
            ICounter shared = remote.Get<ICounter>("jobs");
            for (int i = 0; i < 10; i++)
            {
                shared.Increment();
            }
        })).ToList();
        clients.ForEach(c => c.Start());
        clients.ForEach(Bounded.Join);
        Assert.All(clients, c => Assert.Equal(0, c.ExitCode));
        Assert.Equal(20, jobs.Value);

        Assert.Throws<AuthenticationException>(() => mp.Manager.Connect(address, "wrong"u8.ToArray()));
        using mp.Manager client = mp.Manager.Connect(address, key);
        Assert.Throws<mp.RemoteException>(() => client.Get<ICounter>("nothing"));
        Assert.Equal(20, client.Get<ICounter>("jobs").Value);
    }

    [Fact]
    public void A_remote_manager_on_a_unix_socket_serves_a_child_and_refuses_a_wrong_key()
    {
        byte[] key = "sesame"u8.ToArray();
        string path = Path.Combine(Path.GetTempPath(), $"mp-mgr-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
        using var server = new mp.Manager(new System.Net.Sockets.UnixDomainSocketEndPoint(path), key);
        var jobs = new Counter();
        server.Register<ICounter>("jobs", () => jobs);
        server.Start();
        EndPoint address = server.Address;
        var client = new mp.Process(() =>
        {
            using mp.Manager remote = mp.Manager.Connect(address, key);
            ICounter shared = remote.Get<ICounter>("jobs");
            shared.Increment();
            shared.Increment();
        });
        Bounded.Run(client);
        Assert.Equal(0, client.ExitCode);
        Assert.Equal(2, jobs.Value);
        Assert.Throws<AuthenticationException>(() => mp.Manager.Connect(address, "wrong"u8.ToArray()));
    }

    [Fact]
    public void A_managers_rlock_and_semaphores_work_from_a_child()
    {
        using var manager = new mp.Manager();
        mp.ILock rlock = manager.RLock();
        mp.ISemaphore semaphore = manager.Semaphore(0);
        mp.ISemaphore bounded = manager.BoundedSemaphore(1);
        var child = new mp.Process(() =>
        {
            rlock.Acquire();
            rlock.Acquire(); // reentrant for its owner
            rlock.Release();
            rlock.Release();
            Assert.True(bounded.TryAcquire(Bounded.Long));
            bounded.Release();
            semaphore.Release(2);
        });
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.True(semaphore.TryAcquire(Bounded.Long));
        Assert.True(semaphore.TryAcquire(Bounded.Long));
        Assert.False(semaphore.TryAcquire(TimeSpan.Zero));
        Assert.True(rlock.TryAcquire(Bounded.Long)); // the child left it free
        rlock.Release();
        Assert.True(bounded.TryAcquire(TimeSpan.Zero));
        _ = Bounded.Throws<mp.RemoteException>(() => { bounded.Release(); bounded.Release(); }); // over-release of a bounded semaphore
    }

    [Fact]
    public void A_server_that_is_gone_fails_the_next_call_with_IOException_instead_of_hanging()
    {
        var manager = new mp.Manager();
        mp.ListProxy<int> list = manager.List<int>();
        list.Add(1);
        manager.ServerProcess!.Kill();
        Assert.True(manager.ServerProcess.Join(Bounded.Long));
        Bounded.Throws<IOException>(() => list.Add(2));
        Bounded.Throws<IOException>(() => list.Add(3));
        manager.Dispose();

        var stopped = new mp.Manager();
        mp.ListProxy<int> other = stopped.List<int>();
        stopped.Shutdown();
        Bounded.Throws<IOException>(() => other.Add(1));
        Assert.True(stopped.ServerProcess!.ExitCode is not null);
    }

    [Fact]
    public async Task Locks_events_semaphores_conditions_and_barriers_through_a_manager_work_across_processes()
    {
        using var manager = new mp.Manager();
        mp.ILock lk = manager.Lock();
        mp.IEvent held = manager.Event();
        mp.IEvent release = manager.Event();
        mp.IBarrier barrier = manager.Barrier(2);
        mp.ICondition condition = manager.Condition();
        IDictionary<string, int> state = manager.Dictionary<string, int>();

        using var child = new mp.Process(() =>
        {
            Assert.True(lk.TryAcquire(TimeSpan.FromSeconds(60)));
            held.Set();
            release.Wait(TimeSpan.FromSeconds(60));
            lk.Release();
            state["index"] = barrier.Wait(TimeSpan.FromSeconds(60));
            Assert.True(condition.TryAcquire(TimeSpan.FromSeconds(60)));
            state["ready"] = 1;
            condition.NotifyAll();
            condition.Release();
        });
        child.Start();
        Assert.True(await held.WaitAsync().WaitAsync(Bounded.Long));
        Assert.True(lk.IsLocked);
        Assert.False(lk.TryAcquire(TimeSpan.Zero)); // the child holds it, in the server
        release.Set();
        Assert.True(lk.TryAcquire(Bounded.Long));
        lk.Release();
        using (Bounded.Call(lk.EnterScope)) // a manager's Lock may be released by another thread, as Python's
        {
            Assert.True(lk.IsLocked);
        }

        Assert.False(lk.IsLocked);
        int mine = barrier.Wait(Bounded.Long);
        Assert.True(condition.TryAcquire(Bounded.Long)); // its RLock belongs to this thread, so no helper thread here
        try
        {
            Assert.True(condition.WaitFor(() => state.ContainsKey("ready"), Bounded.Long));
        }
        finally
        {
            condition.Release();
        }

        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal([0, 1], new[] { mine, state["index"] }.Order());

        mp.ISemaphore semaphore = manager.BoundedSemaphore(1);
        Assert.True(semaphore.TryAcquire(TimeSpan.Zero));
        Assert.Equal(0, semaphore.Value);
        semaphore.Release();
        var over = Assert.Throws<mp.RemoteException>(() => semaphore.Release());
        Assert.Equal(typeof(SemaphoreFullException).FullName, over.RemoteType);
        var unlocked = Assert.Throws<mp.RemoteException>(() => manager.Lock().Release());
        Assert.Equal(typeof(SynchronizationLockException).FullName, unlocked.RemoteType);
        await manager.Semaphore(1).AcquireAsync().WaitAsync(Bounded.Long);
    }

    [Fact]
    public void Values_and_arrays_kept_by_a_manager_are_updated_exactly_by_two_processes()
    {
        using var manager = new mp.Manager();
        mp.ISharedValue<int> value = manager.Value(0);
        mp.ISharedValue<long> counter = manager.Value(0L);
        mp.ISharedArray<double> array = manager.Array<double>(4);
        var workers = Enumerable.Range(0, 2).Select(w => new mp.Process(() =>
        {
            for (int i = 0; i < 100; i++)
            {
                counter.Increment();
                using (value.GetLock().EnterScope())
                {
                    value.Value += 2; // a read and a write, made atomic by the value's lock
                }
            }

            array.Set(w, w + 0.5);
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(Bounded.Join);
        Assert.All(workers, w => Assert.Equal(0, w.ExitCode));
        Assert.Equal(400, value.Value);
        Assert.Equal(200L, counter.Value);
        Assert.Equal([0.5, 1.5, 0, 0], array.ToArray());
        Assert.Equal(4, array.Length);
        Assert.Equal(1.5, array.Get(1));
        var outside = Assert.Throws<mp.RemoteException>(() => array.Get(4));
        Assert.Equal(typeof(IndexOutOfRangeException).FullName, outside.RemoteType);
    }

    [Fact]
    public void A_manager_queue_carries_the_seeds_squares_from_a_child_and_joinable_queues_join()
    {
        using var manager = new mp.Manager();
        mp.IQueue<object> queue = manager.Queue<object>(maxSize: 10);
        using var child = new mp.Process(() =>
        {
            for (int i = 0; i < 10; i++)
            {
                queue.Put(i * i);
            }

            queue.Put("STOP");
        });
        child.Start();
        var results = new List<object>();
        object result;
        do
        {
            result = queue.Get(Bounded.Long);
            results.Add(result);
        }
        while (!Equals(result, "STOP"));
        Bounded.Join(child);
        Assert.Equal(Enumerable.Range(0, 10).Select(i => (object)(i * i)).Append("STOP"), results);

        var empty = Assert.Throws<mp.RemoteException>(() => queue.Get(TimeSpan.FromMilliseconds(10)));
        Assert.Equal(typeof(mp.QueueEmptyException).FullName, empty.RemoteType);
        Assert.False(queue.TryGet(out object? nothing, TimeSpan.Zero));
        Assert.Null(nothing);
        Assert.True(queue.IsEmpty);

        mp.IJoinableQueue<int> jobs = manager.JoinableQueue<int>();
        jobs.Put(1);
        jobs.Put(2);
        using var worker = new mp.Process(() =>
        {
            for (int i = 0; i < 2; i++)
            {
                jobs.Get(TimeSpan.FromSeconds(60));
                jobs.TaskDone();
            }
        });
        worker.Start();
        Assert.True(jobs.Join(Bounded.Long));
        Bounded.Join(worker);
        Assert.Equal(0, worker.ExitCode);
        Assert.Equal(typeof(InvalidOperationException).FullName, Assert.Throws<mp.RemoteException>(jobs.TaskDone).RemoteType);
    }
}
