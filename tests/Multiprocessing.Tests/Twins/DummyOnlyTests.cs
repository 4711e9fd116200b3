using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Multiprocessing.Platform;
using D = Multiprocessing.Dummy;

namespace Multiprocessing.Tests.Twins;

/// <summary>What only the thread twins have or do differently: the channel views of queues, references not copies, unkillable threads.</summary>
public sealed class DummyOnlyTests
{
    [Fact]
    public void A_dummy_process_is_a_thread_that_cannot_be_killed()
    {
        object shared = new();
        object? seen = null;
        string? name = null;
        var process = new D.Process(() =>
        {
            seen = shared;
            name = D.Process.Current.Name;
        }, daemon: true);
        Assert.Null(process.ExitCode);
        Assert.Throws<InvalidOperationException>(() => process.Join());
        process.Start();
        Assert.True(process.Join(Bounded.Long));
        Assert.Same(shared, seen); // passed by reference, not copied
        Assert.Equal(process.Name, name);
        Assert.StartsWith("Thread-", process.Name, StringComparison.Ordinal);
        Assert.Equal(Environment.ProcessId, process.Pid);
        Assert.Equal(0, process.ExitCode);
        Assert.Throws<InvalidOperationException>(process.Start);
        PlatformNotSupportedException error = Assert.Throws<PlatformNotSupportedException>(process.Terminate);
        Assert.Contains("threads cannot be killed", error.Message, StringComparison.Ordinal);
        Assert.Throws<PlatformNotSupportedException>(process.Kill);
        Assert.Equal("MainProcess", D.Process.Current.Name);
    }

    [Fact]
    public async Task A_dummy_queue_is_fifo_bounded_and_refuses_use_after_close()
    {
        using var queue = new D.Queue<string>(maxSize: 2);
        Put(queue, "a");
        Assert.True(queue.TryPut("b"));
        Assert.True(queue.IsFull);
        Assert.False(queue.TryPut("c"));
        Assert.Throws<QueueFullException>(() => queue.Put("c", TimeSpan.FromMilliseconds(10)));
        Assert.Equal(2, queue.Count);
        Assert.Equal("a", queue.Get());
        Assert.Equal("b", await queue.GetAsync());
        Assert.False(queue.TryGet(out _));
        Assert.Throws<QueueEmptyException>(() => queue.Get(TimeSpan.FromMilliseconds(10)));
        queue.PutMany(["x", "y"]);
        var into = new string[4];
        Assert.Equal(2, queue.GetMany(into, Bounded.Long));
        Assert.Equal(["x", "y"], into[..2]);
        await queue.Writer.WriteAsync("w");
        Assert.Equal("w", await queue.Reader.ReadAsync());
        queue.Close();
        Assert.Throws<ObjectDisposedException>(() => queue.Put("z"));
        Assert.Throws<ObjectDisposedException>(() => queue.TryGet(out _));
    }

#pragma warning disable CA1859 // the point is to go through the shared interface
    private static void Put(IQueue<string> queue, string item) => queue.Put(item);
#pragma warning restore CA1859

    [Fact]
    public void A_dummy_queue_carries_items_between_threads_by_reference()
    {
        var queue = new D.Queue<int[]>();
        var sent = new[] { 1, 2, 3 };
        var producer = new D.Process(() => queue.Put(sent));
        producer.Start();
        Assert.Same(sent, queue.Get(Bounded.Long));
        Assert.True(producer.Join(Bounded.Long));
    }

    [Fact]
    public void A_joinable_dummy_queue_joins_when_every_task_is_done()
    {
        var queue = new D.JoinableQueue<int>();
        Assert.True(queue.Join(TimeSpan.Zero));
        Assert.Throws<InvalidOperationException>(queue.TaskDone);
        queue.Put(1);
        queue.Put(2);
        Assert.False(queue.Join(TimeSpan.FromMilliseconds(10)));
        int sum = 0;
        var consumer = new D.Process(() =>
        {
            for (int i = 0; i < 2; i++)
            {
                sum += queue.Get(Bounded.Long);
                queue.TaskDone();
            }
        });
        consumer.Start();
        Assert.True(queue.Join(Bounded.Long));
        Assert.True(consumer.Join(Bounded.Long));
        Assert.Equal(3, sum);
        Assert.Equal(0, queue.UnfinishedTasks);

        var simple = new D.SimpleQueue<string>();
        Assert.True(simple.IsEmpty);
        simple.Put("s");
        Assert.Equal("s", simple.Get(Bounded.Long));
    }

    [Fact]
    public void Dummy_shared_memory_is_a_named_block_of_this_process()
    {
        using var created = new D.SharedMemory(create: true, size: 16);
        Assert.StartsWith("psm_", created.Name, StringComparison.Ordinal);
        created.Span[3] = 7;
        using var attached = new D.SharedMemory(created.Name);
        Assert.Equal(7, attached.Span[3]);
        Assert.Equal(16, attached.Size);
        Assert.Throws<IOException>(() => new D.SharedMemory(created.Name, create: true, size: 4));
        Assert.Throws<FileNotFoundException>(() => new D.SharedMemory("no-such-block-here"));
        Assert.Throws<ArgumentOutOfRangeException>(() => new D.SharedMemory(create: true, size: 0));
        created.Unlink();
        Assert.Throws<FileNotFoundException>(created.Unlink);
        Assert.Throws<FileNotFoundException>(() => new D.SharedMemory(created.Name));
        Assert.Equal(7, attached.Span[3]); // attached objects keep working after the unlink
        attached.Close();
        Assert.True(attached.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => attached.Span[0]);
    }

    [Fact]
    public void A_thread_pool_task_past_its_timeout_fails_but_cannot_be_stopped()
    {
        using var release = new ManualResetEventSlim();
        using var pool = new D.Pool(1);
        D.AsyncResult<int> slow = pool.ApplyAsync(() =>
        {
            release.Wait(Bounded.Long);
            return 1;
        }, timeout: TimeSpan.FromMilliseconds(20));
        Assert.Throws<TimeoutException>(() => slow.Get(Bounded.Long));
        release.Set();
        Assert.Equal(2, pool.Apply(() => 2, timeout: Bounded.Long));
        Assert.Equal(new[] { 3, 5 }, pool.Starmap((int a, int b) => a + b, [(1, 2), (2, 3)]));
        Assert.Equal(Enumerable.Range(0, 20), pool.Imap(i => i, Enumerable.Range(0, 20)));
        Assert.Equal(Enumerable.Range(0, 20), pool.ImapUnordered(i => i, Enumerable.Range(0, 20), chunkSize: 3).Order());
        pool.Close();
        Assert.Throws<InvalidOperationException>(() => pool.Apply(() => 0));
        pool.Join();
    }

    [Fact]
    public void A_thread_sentinel_is_an_OS_handle_that_the_process_Wait_and_Poll_accept_too()
    {
        var finish = new D.Event();
        using var thread = new D.Process(() => finish.Wait(Bounded.Long));
        thread.Start();
        SafeHandle sentinel = thread.Sentinel;
        Assert.Empty(Connection.Wait([sentinel], TimeSpan.Zero));
        finish.Set();
        Assert.Equal([sentinel], Connection.Wait([sentinel], Bounded.Long));
        Assert.True(thread.Join(Bounded.Long));
    }

    [Fact]
    public void A_dummy_wait_watches_sockets_and_in_memory_connections_together()
    {
        (Socket first, Socket second) = SocketPairs.Create();
        (D.Connection a, D.Connection b) = D.Pipe.Create();
        using (first)
        using (second)
        using (a)
        using (b)
        {
            Assert.Empty(D.Connection.Wait([second, b], TimeSpan.Zero));
            var sender = new D.Process(() => a.Send(1));
            sender.Start();
            Assert.Equal([b], D.Connection.Wait([second, b], Bounded.Long)); // the in-memory side wakes a poll of the socket
            Assert.Equal(1, b.Recv<int>());

            first.Send([1]);
            Assert.Equal([second], D.Connection.Wait([second, b], Bounded.Long));
            Assert.True(sender.Join(Bounded.Long));
        }

        Assert.Throws<ObjectDisposedException>(() => D.Connection.Wait([second], TimeSpan.Zero));
    }

    [Fact]
    public void A_dummy_manager_server_hands_its_threads_the_object_itself_and_other_processes_a_proxy()
    {
        byte[] key = "abracadabra"u8.ToArray();
        var queue = new D.Queue<string>();
        using var server = new D.Manager(new IPEndPoint(IPAddress.Loopback, 0), key);
        server.Register<IQueue<string>>("get_queue", () => queue);
        server.Start();
        Assert.Throws<InvalidOperationException>(server.Start);
        Assert.Same(queue, server.Get<IQueue<string>>("get_queue")); // nothing crosses on the thread path
        RemoteException wrongType = Assert.Throws<RemoteException>(() => server.Get<ILock>("get_queue"));
        Assert.Equal(typeof(InvalidCastException).FullName, wrongType.RemoteType);

        Process child = RemotePutter(server.Address, key);
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal("from another process", queue.Get(Bounded.Long));
    }

    /// <summary>A child process that puts into a server's queue (made apart, so its closure holds only what it needs).</summary>
    private static Process RemotePutter(EndPoint address, byte[] key) => new(() =>
    {
        using Manager remote = Manager.Connect(address, key); // the process manager's client
        remote.Get<IQueue<string>>("get_queue").Put("from another process");
    });

    [Fact]
    public void A_connected_dummy_manager_makes_its_objects_in_the_server()
    {
        byte[] key = "abracadabra"u8.ToArray();
        using var server = new D.Manager(new IPEndPoint(IPAddress.Loopback, 0), key);
        server.Start();
        using D.Manager client = D.Manager.Connect(server.Address, key);
        Assert.Equal(server.Address, client.Address);
        Assert.Null(client.ServerProcess);

        D.ListProxy<int> list = client.List([3, 1]);
        list.Add(2);
        list.Sort();
        Assert.Equal("[1, 2, 3]", list.ToString());
        Assert.Equal([1, 2, 3], list.ToArray());

        ILock lk = client.Lock();
        Assert.IsNotType<D.Lock>(lk); // a proxy to a lock in the server
        Assert.True(lk.TryAcquire());
        lk.Release();
        IQueue<int> queue = client.Queue<int>();
        queue.Put(5);
        Assert.Equal(5, queue.Get(Bounded.Long));

        Assert.Throws<InvalidOperationException>(() => new D.Manager().Address);
    }
}
