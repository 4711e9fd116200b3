using System.Runtime.Serialization;
using System.Threading.Channels;
using Multiprocessing.Platform;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Queue, SimpleQueue and JoinableQueue across processes and threads (issue 5's rules, one test or more each).</summary>
public sealed class QueueTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(50);

    [Fact]
    public void Seed_example_a_child_puts_hello_world_and_the_parent_gets_it()
    {
        using var q = new mp.Queue<string>();
        var p = new mp.Process<mp.Queue<string>>(static q => q.Put("hello world"), q);
        p.Start();
        Assert.Equal("hello world", q.Get(Bounded.Long));
        Bounded.Join(p);
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void Items_of_every_kind_come_out_in_order_in_one_process()
    {
        using var ints = new mp.Queue<int>();
        using var strings = new mp.Queue<string?>();
        using var bytes = new mp.Queue<byte[]?>();
        using var objects = new mp.Queue<object?>();
        using var tuples = new mp.Queue<(int, double, Guid)>();
        for (int i = 0; i < 1000; i++)
        {
            ints.Put(i);
        }

        strings.Put("a");
        strings.Put(null);
        strings.Put(new string('x', 100_000));
        bytes.Put([1, 2, 3]);
        bytes.Put(null);
        bytes.Put([]);
        objects.Put(new List<int> { 1, 2 });
        objects.Put(null);
        objects.Put(42L);
        Guid g = Guid.NewGuid();
        tuples.Put((1, 2.5, g));

        Assert.Equal(1000, ints.Count);
        for (int i = 0; i < 1000; i++)
        {
            Assert.Equal(i, ints.Get());
        }

        Assert.True(ints.IsEmpty);
        Assert.Equal("a", strings.Get());
        Assert.Null(strings.Get());
        Assert.Equal(100_000, strings.Get()!.Length);
        Assert.Equal([1, 2, 3], bytes.Get());
        Assert.Null(bytes.Get());
        Assert.Empty(bytes.Get()!);
        Assert.Equal([1, 2], Assert.IsType<List<int>>(objects.Get()));
        Assert.Null(objects.Get());
        Assert.Equal(42L, objects.Get());
        Assert.Equal((1, 2.5, g), tuples.Get());
    }

    [Fact]
    public void The_queues_implement_the_shared_interfaces_used_by_managers_and_thread_twins()
    {
        using var q = new mp.JoinableQueue<string>();
        mp.IQueue<string> queue = Assert.IsAssignableFrom<mp.IQueue<string>>(q);
        mp.IJoinableQueue<string> joinable = Assert.IsAssignableFrom<mp.IJoinableQueue<string>>(q);
        queue.Put("x");
        Assert.Equal(1, queue.Count);
        Assert.Equal("x", queue.Get(TimeSpan.Zero));
        joinable.TaskDone();
        Assert.True(joinable.Join(TimeSpan.Zero));
    }

    [Fact]
    public void Timeouts_follow_Python_empty_and_full()
    {
        using var q = new mp.Queue<int>(maxSize: 2);
        Assert.Equal(2, q.MaxSize);
        Assert.False(q.TryGet(out _));
        Assert.False(q.TryGet(out _, Short));
        Assert.Throws<mp.QueueEmptyException>(() => q.Get(TimeSpan.Zero));
        Assert.Throws<mp.QueueEmptyException>(() => q.Get(Short));
        Assert.True(q.TryPut(1));
        q.Put(2, Short);
        Assert.True(q.IsFull);
        Assert.Equal(2, q.Count);
        Assert.False(q.TryPut(3));
        Assert.False(q.TryPut(3, Short));
        Assert.Throws<mp.QueueFullException>(() => q.Put(3, TimeSpan.Zero));
        Assert.Throws<mp.QueueFullException>(() => q.Put(3, Short));
        Assert.Throws<ArgumentOutOfRangeException>(() => q.Put(3, TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => q.TryGet(out _, TimeSpan.FromSeconds(-2)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.Queue<int>(-1));
        Assert.Equal(1, q.Get());
        Assert.False(q.IsFull);
        Assert.True(q.TryPut(3));
        Assert.Equal(2, q.Get());
        Assert.Equal(3, q.Get(Timeout.InfiniteTimeSpan));
    }

    [Fact]
    public void A_bounded_queue_blocks_a_producer_process_until_the_parent_makes_room()
    {
        using var q = new mp.Queue<int>(maxSize: 3);
        using var progress = new mp.Queue<int>();
        var producer = new mp.Process(() =>
        {
            for (int i = 0; i < 20; i++)
            {
                q.Put(i);
                progress.Put(i);
            }
        });
        producer.Start();
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(i, progress.Get(Bounded.Long));
        }

        // The fourth Put waits for room: no progress until we take an item.
        Assert.False(progress.TryGet(out _, TimeSpan.FromMilliseconds(100)));
        Assert.True(q.IsFull);
        for (int i = 0; i < 20; i++)
        {
            Assert.Equal(i, q.Get(Bounded.Long));
        }

        Bounded.Join(producer);
        Assert.Equal(0, producer.ExitCode);
    }

    [Fact]
    public void A_producer_may_exit_right_after_its_last_put_and_be_joined_before_the_queue_is_drained()
    {
        // CPython's classic deadlock: joining a producer whose feeder thread still holds data. Here the data is in shared memory.
        using var q = new mp.Queue<byte[]>();
        var producer = new mp.Process(() =>
        {
            for (int i = 0; i < 200; i++)
            {
                q.Put(Enumerable.Repeat((byte)i, 100_000).ToArray());
            }

            Environment.Exit(0); // no goodbye, no flush
        });
        producer.Start();
        Bounded.Join(producer);
        Assert.Equal(0, producer.ExitCode);
        Assert.Equal(200, q.Count);
        for (int i = 0; i < 200; i++)
        {
            byte[] item = q.Get(TimeSpan.Zero);
            Assert.Equal(100_000, item.Length);
            Assert.All(item, b => Assert.Equal((byte)i, b));
        }
    }

    [Fact]
    public void An_unserializable_item_fails_in_Put_with_the_serializers_message_and_nothing_is_queued()
    {
        using var q = new mp.Queue<object>();
        using var stream = new MemoryStream();
        var ex = Assert.Throws<SerializationException>(() => q.Put(new Holder(stream)));
        Assert.Contains("Stream", ex.Message, StringComparison.Ordinal);
        Assert.True(q.IsEmpty);
        q.Put("next");
        Assert.Equal("next", q.Get(TimeSpan.Zero));
    }

    private sealed record Holder(Stream Stream);

    [Fact]
    public void A_queue_cannot_be_put_into_a_queue_and_says_why()
    {
        using var outer = new mp.Queue<mp.Queue<int>>();
        using var inner = new mp.Queue<int>();
        var ex = Assert.Throws<SerializationException>(() => outer.Put(inner));
        Assert.Contains("child process when it starts", ex.Message, StringComparison.Ordinal);
        Assert.True(outer.IsEmpty);
    }

    [Fact]
    public void Close_ends_this_handle_but_the_items_stay_for_the_other_processes()
    {
        var q = new mp.Queue<int>();
        using var toParent = new mp.Queue<int>();
        using var toChild = new mp.Queue<int>();
        q.Put(1);
        q.Put(2);
        var child = new mp.Process(() =>
        {
            toParent.Put(0); // started; the parent closes its handle now
            _ = toChild.Get(Bounded.Long);
            toParent.Put(q.Get(Bounded.Long) + q.Get(Bounded.Long));
        });
        child.Start();
        Assert.Equal(0, toParent.Get(Bounded.Long));
        q.Close();
        Assert.Throws<ObjectDisposedException>(() => q.Put(3));
        Assert.Throws<ObjectDisposedException>(() => q.Get());
        Assert.Throws<ObjectDisposedException>(() => q.TryGet(out _));
        Assert.Throws<ObjectDisposedException>(() => _ = q.Count);
        q.Close(); // twice is fine
        toChild.Put(0);
        Assert.Equal(3, toParent.Get(Bounded.Long));
        Bounded.Join(child);
    }

    [Fact]
    public async Task Closing_a_queue_wakes_a_Get_blocked_on_another_thread_with_ObjectDisposedException()
    {
        var q = new mp.Queue<int>();
        Task<int> blocked = Task.Run(() => q.Get());
        await Task.WhenAny(blocked, Task.Delay(Short));
        Assert.False(blocked.IsCompleted);
        q.Dispose();
        await Assert.ThrowsAsync<ObjectDisposedException>(() => blocked.WaitAsync(Bounded.Long));
    }

    [Fact]
    public void SimpleQueue_crosses_to_a_child_and_back()
    {
        using var requests = new mp.SimpleQueue<string>();
        using var replies = new mp.SimpleQueue<string>();
        Assert.True(requests.IsEmpty);
        var child = new mp.Process(() =>
        {
            string? text;
            while ((text = requests.Get()) != "STOP")
            {
                replies.Put(text.ToUpperInvariant());
            }
        });
        child.Start();
        requests.Put("one");
        requests.Put("two");
        requests.Put("STOP");
        Assert.Equal("ONE", replies.Get(Bounded.Long));
        Assert.Equal("TWO", replies.Get(Bounded.Long));
        Bounded.Join(child);
        Assert.True(replies.IsEmpty);
        Assert.Throws<mp.QueueEmptyException>(() => replies.Get(Short));
        replies.Close();
        Assert.Throws<ObjectDisposedException>(() => replies.Put("x"));
    }

    [Fact]
    public void JoinableQueue_Join_waits_for_TaskDone_from_a_worker_process_and_too_many_TaskDone_throws()
    {
        using var q = new mp.JoinableQueue<int>();
        using var results = new mp.Queue<int>();
        Assert.True(q.Join(TimeSpan.Zero));
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
        q.PutMany([1, 2, 3, -1]);
        Assert.Equal(4, q.UnfinishedTasks);
        Assert.False(q.Join(Short));
        var worker = new mp.Process(() =>
        {
            int item;
            while ((item = q.Get()) >= 0)
            {
                results.Put(item * 10);
                q.TaskDone();
            }

            q.TaskDone();
        });
        worker.Start();
        Assert.True(q.Join(Bounded.Long));
        Assert.Equal(0, q.UnfinishedTasks);
        Assert.Equal([10, 20, 30], new[] { results.Get(TimeSpan.Zero), results.Get(TimeSpan.Zero), results.Get(TimeSpan.Zero) });
        Bounded.Join(worker);
        Assert.Throws<InvalidOperationException>(() => q.TaskDone());
    }

    [Fact]
    public void A_64_MiB_message_crosses_between_processes_and_its_memory_is_given_back()
    {
        using var q = new mp.Queue<byte[]>();
        using var back = new mp.Queue<long>();
        var child = new mp.Process(() =>
        {
            byte[] big = q.Get(Bounded.Long);
            long sum = 0;
            for (int i = 0; i < big.Length; i += 4096)
            {
                sum += big[i];
            }

            back.Put(big.Length == 64 << 20 && big[^1] == (byte)((big.Length - 1) % 251) ? sum : -1);
        });
        child.Start();
        byte[] message = new byte[64 << 20];
        long expected = 0;
        for (int i = 0; i < message.Length; i++)
        {
            message[i] = (byte)(i % 251);
        }

        for (int i = 0; i < message.Length; i += 4096)
        {
            expected += message[i];
        }

        q.Put(message);
        Assert.True(q.Ring.AllocatedBytes >= 64 << 20);
        Assert.Equal(expected, back.Get(Bounded.Long));
        Bounded.Join(child);
        Assert.True(q.Ring.AllocatedBytes < 16 << 20, $"{q.Ring.AllocatedBytes} bytes still allocated after the message was consumed");
    }

    [Fact]
    public void An_unbounded_queue_takes_a_backlog_beyond_its_hot_area_without_blocking_and_gives_the_memory_back()
    {
        using var q = new mp.Queue<byte[]>();
        var producer = new mp.Process(() =>
        {
            byte[] chunk = new byte[64 << 10];
            for (int i = 0; i < 1024; i++) // 64 MiB, nobody reading
            {
                chunk[0] = (byte)i;
                q.Put(chunk);
            }
        });
        Bounded.Run(producer);
        Assert.Equal(1024, q.Count);
        Assert.True(q.Ring.AllocatedBytes > 60L << 20);
        for (int i = 0; i < 1024; i++)
        {
            Assert.Equal((byte)i, q.Get(TimeSpan.Zero)[0]);
        }

        Assert.True(q.Ring.AllocatedBytes <= MessageRing.DefaultHotSize + (2 << 20), $"{q.Ring.AllocatedBytes} bytes still allocated");
        Assert.Equal(0, q.Ring.BytesInUse);
    }

    [Fact]
    public void An_unbounded_queue_takes_a_backlog_after_the_ring_wrapped_from_empty()
    {
        // 1 MiB ring, 64 KiB hot part; an int record takes 24 bytes. Run the tail into the cold part, drain the queue,
        // then queue a backlog of 480 KB: the first Put wraps back to the ring's start, and the backlog must pass the
        // spot where the previous lap ended (a pad nobody had skipped used to stop Put there, for good).
        using var q = new mp.Queue<int>(MessageRing.Create(0, "test", 1 << 20, 64 << 10));
        for (int i = 0; i < 3_000; i++)
        {
            q.Put(i);
        }

        for (int i = 0; i < 3_000; i++)
        {
            Assert.Equal(i, q.Get(TimeSpan.Zero));
        }

        for (int i = 0; i < 20_000; i++)
        {
            Assert.True(q.TryPut(i, TimeSpan.Zero), $"Put {i} found no room in an unbounded queue");
        }

        for (int i = 0; i < 20_000; i++)
        {
            Assert.Equal(i, q.Get(TimeSpan.Zero));
        }
    }

    [Fact]
    public void An_unbounded_queue_with_a_backlog_in_the_hot_part_does_not_wrap_into_it()
    {
        // Half of 2,000 items taken, then 20,000 more: wrapping to the ring's start while the other 1,000 were queued
        // left room only up to them, and Put blocked there.
        using var q = new mp.Queue<int>(MessageRing.Create(0, "test", 1 << 20, 64 << 10));
        for (int i = 0; i < 2_000; i++)
        {
            q.Put(i);
        }

        for (int i = 0; i < 1_000; i++)
        {
            Assert.Equal(i, q.Get(TimeSpan.Zero));
        }

        for (int i = 2_000; i < 22_000; i++)
        {
            Assert.True(q.TryPut(i, TimeSpan.Zero), $"Put {i} found no room in an unbounded queue");
        }

        for (int i = 1_000; i < 22_000; i++)
        {
            Assert.Equal(i, q.Get(TimeSpan.Zero));
        }

        Assert.True(q.IsEmpty);
    }

    [Fact]
    public void A_small_ring_lapped_hundreds_of_times_with_backlogs_early_wraps_and_given_back_pages_keeps_every_byte()
    {
        // The default ring is 16 GiB: too big to lap in a test. This one is 1 MiB with a 64 KiB hot part and 64 KiB granules.
        using var q = new mp.Queue<byte[]>(MessageRing.Create(0, "test", 1 << 20, 64 << 10));
        const int Messages = 20_000;
        var producer = new mp.Process(() =>
        {
            var random = new Random(5);
            for (int seq = 0; seq < Messages; seq++)
            {
                var message = new byte[random.Next(5, 40_000)];
                BitConverter.TryWriteBytes(message, seq);
                for (int i = 4; i < message.Length; i++)
                {
                    message[i] = (byte)(seq * 31 + i);
                }

                q.Put(message);
            }
        });
        producer.Start();
        var batch = new byte[8][];
        int expected = 0;
        int bad = 0;
        while (expected < Messages)
        {
            // Single gets and batches, so the producer alternates between running ahead (cold pages) and wrapping early.
            int n = expected % 3 == 0 ? q.GetMany(batch, Bounded.Long) : (q.TryGet(out batch[0], Bounded.Long) ? 1 : 0);
            Assert.True(n > 0, "the consumer waited too long");
            for (int k = 0; k < n; k++)
            {
                byte[] m = batch[k];
                bool ok = BitConverter.ToInt32(m) == expected;
                for (int i = 4; ok && i < m.Length; i += 97)
                {
                    ok = m[i] == (byte)(expected * 31 + i);
                }

                bad += ok && m[^1] == (byte)(expected * 31 + m.Length - 1) ? 0 : 1;
                expected++;
            }
        }

        Assert.Equal(0, bad);
        Bounded.Join(producer);
        Assert.Equal(0, producer.ExitCode);
        Assert.Throws<ArgumentOutOfRangeException>(() => q.Put(new byte[600_000]));
    }

    [Fact]
    public async Task Many_producers_and_consumers_in_processes_and_threads_lose_nothing_duplicate_nothing_and_keep_each_producers_order()
    {
        const int Producers = 4, Consumers = 4, PerProducer = 250_000;
        using var q = new mp.Queue<long>(maxSize: 10_000);
        using var reports = new mp.Queue<long[]>();

        static long[] Consume(mp.Queue<long> q, bool batches)
        {
            var received = new List<long>(PerProducer * 2);
            var last = new long[Producers];
            Array.Fill(last, -1);
            Span<long> batch = stackalloc long[32];
            while (true)
            {
                int n = batches ? q.GetMany(batch, Bounded.Long) : (q.TryGet(out batch[0], Bounded.Long) ? 1 : 0);
                if (n == 0)
                {
                    throw new TimeoutException("a consumer waited too long");
                }

                for (int i = 0; i < n; i++)
                {
                    long item = batch[i];
                    if (item < 0)
                    {
                        for (int j = i + 1; j < n; j++)
                        {
                            q.Put(batch[j]); // sentinels are put last: what follows this one is other consumers' sentinels
                        }

                        received.Add(last.Any(l => l == -2) ? -2 : -1);
                        return [.. received];
                    }

                    int producer = (int)(item >> 32);
                    long seq = item & 0xFFFF_FFFF;
                    if (seq <= last[producer])
                    {
                        last[producer] = -2; // out of order: reported through the sentinel
                    }
                    else if (last[producer] != -2)
                    {
                        last[producer] = seq;
                    }

                    received.Add(item);
                }
            }
        }

        static void Produce(mp.Queue<long> q, int id, bool batches)
        {
            if (batches)
            {
                var chunk = new long[100];
                for (int s = 0; s < PerProducer; s += chunk.Length)
                {
                    for (int i = 0; i < chunk.Length; i++)
                    {
                        chunk[i] = ((long)id << 32) | (uint)(s + i);
                    }

                    q.PutMany(chunk);
                }
            }
            else
            {
                for (int s = 0; s < PerProducer; s++)
                {
                    q.Put(((long)id << 32) | (uint)s);
                }
            }
        }

        var processes = new List<mp.Process>();
        for (int c = 0; c < 2; c++)
        {
            processes.Add(new mp.Process(() => reports.Put(Consume(q, batches: false))));
        }

        for (int p = 0; p < 2; p++)
        {
            int id = p;
            processes.Add(new mp.Process(() => Produce(q, id, batches: false)));
        }

        processes.ForEach(p => p.Start());
        Task<long[]>[] threadConsumers = [.. Enumerable.Range(0, 2).Select(_ => Task.Factory.StartNew(() => Consume(q, batches: true), TaskCreationOptions.LongRunning))];
        Task[] threadProducers = [.. Enumerable.Range(2, 2).Select(id => Task.Factory.StartNew(() => Produce(q, id, batches: true), TaskCreationOptions.LongRunning))];
        await Task.WhenAll(threadProducers).WaitAsync(Bounded.Long);
        foreach (mp.Process p in processes.Skip(2))
        {
            Bounded.Join(p);
            Assert.Equal(0, p.ExitCode);
        }

        for (int c = 0; c < Consumers; c++)
        {
            q.Put(-1);
        }

        var all = new List<long[]>(await Task.WhenAll(threadConsumers).WaitAsync(Bounded.Long));
        for (int c = 0; c < 2; c++)
        {
            if (!reports.TryGet(out long[] report, Bounded.Long))
            {
                Assert.Fail(string.Join("; ", processes.Take(2).Select(p => $"{p.Name}: alive {p.IsAlive}, exit {p.ExitCode}, {p.Error}")) + $"; queue count {q.Count}");
            }

            all.Add(report);
        }

        var seen = new bool[Producers * PerProducer];
        foreach (long[] report in all)
        {
            Assert.Equal(-1, report[^1]); // -2: some producer's items came out of order
            foreach (long item in report.AsSpan(0, report.Length - 1))
            {
                int index = (int)(item >> 32) * PerProducer + (int)(item & 0xFFFF_FFFF);
                Assert.False(seen[index], $"item {item:X} was received twice");
                seen[index] = true;
            }
        }

        Assert.Equal(Producers * PerProducer, seen.Count(s => s));
        Assert.True(q.IsEmpty);
        foreach (mp.Process p in processes.Take(2))
        {
            Bounded.Join(p);
            Assert.Equal(0, p.ExitCode);
        }
    }

    [Fact]
    public void A_producer_killed_after_claiming_never_shows_a_half_written_item_and_blocks_nobody()
    {
        using var q = new mp.Queue<string>();
        using var signal = new mp.Queue<int>();
        var victim = new mp.Process(() =>
        {
            q.Put("before");
            MessageRing.TestHook = (ring, stage) =>
            {
                if (ring == q.Ring && stage == 2)
                {
                    signal.Put(2);
                    Thread.Sleep(Timeout.Infinite);
                }
            };
            q.Put("half-written");
        });
        victim.Start();
        Assert.Equal(2, signal.Get(Bounded.Long));
        var other = new mp.Process(() => q.Put("after"));
        Bounded.Run(other);
        Assert.Equal("before", q.Get(Bounded.Long));
        Assert.False(q.TryGet(out _, Short), "FIFO: the item being written comes first while its writer lives");
        victim.Kill();
        Assert.Equal("after", q.Get(Bounded.Long));
        Bounded.Join(victim);
        Assert.True(q.IsEmpty);
        q.Put("still works");
        Assert.Equal("still works", q.Get(TimeSpan.Zero));
    }

    [Fact]
    public async Task A_producer_killed_holding_the_claim_lock_does_not_stop_the_others()
    {
        using var q = new mp.Queue<int>();
        using var signal = new mp.Queue<int>();
        var victim = new mp.Process(() =>
        {
            MessageRing.TestHook = (ring, stage) =>
            {
                if (ring == q.Ring && stage == 1)
                {
                    signal.Put(1);
                    Thread.Sleep(Timeout.Infinite);
                }
            };
            q.Put(666);
        });
        victim.Start();
        Assert.Equal(1, signal.Get(Bounded.Long));
        Task put = Task.Run(() => q.Put(7));
        await Task.WhenAny(put, Task.Delay(Short));
        Assert.False(put.IsCompleted, "the claim lock is held");
        victim.Kill();
        await put.WaitAsync(Bounded.Long); // a producer must not stay blocked on a dead process's claim lock
        Assert.Equal(7, q.Get(Bounded.Long));
        Bounded.Join(victim);
    }

    [Fact]
    public void A_consumer_killed_while_reading_loses_only_its_item_and_the_memory_is_reclaimed()
    {
        using var q = new mp.Queue<int>();
        using var signal = new mp.Queue<int>();
        q.PutMany([1, 2, 3]);
        var victim = new mp.Process(() =>
        {
            MessageRing.TestHook = (ring, stage) =>
            {
                if (ring == q.Ring && stage == 3)
                {
                    signal.Put(3);
                    Thread.Sleep(Timeout.Infinite);
                }
            };
            _ = q.Get();
        });
        victim.Start();
        Assert.Equal(3, signal.Get(Bounded.Long));
        Assert.Equal(2, q.Get(TimeSpan.Zero));
        Assert.True(q.Ring.BytesInUse > 0);
        victim.Kill();
        Bounded.Join(victim);

        // The ring learns of the death on the process watch's thread; a callback registered after the ring's runs after it.
        using var noticed = new ManualResetEventSlim();
        using IDisposable? watch = ProcessWatch.WhenExited(victim.Pid!.Value, noticed.Set);
        Assert.True(noticed.Wait(Bounded.Long));
        Assert.Equal(3, q.Get(TimeSpan.Zero));
        q.Put(4);
        Assert.Equal(4, q.Get(TimeSpan.Zero));
        Assert.Equal(0, q.Ring.BytesInUse);
    }

    [Fact]
    public void A_producer_SIGKILLed_in_the_middle_of_big_puts_leaves_only_whole_messages_and_no_named_object()
    {
        using var q = new mp.Queue<byte[]>(maxSize: 4);

        // No OS object to leave behind: the queue is an anonymous memfd, which dies with its last descriptor and mapping.
        Assert.StartsWith("/memfd:mp-queue", new FileInfo($"/proc/self/fd/{q.Ring.Region.Handle.DangerousGetHandle()}").LinkTarget, StringComparison.Ordinal);
        var victim = new mp.Process(() =>
        {
            var message = new byte[32 << 20];
            for (byte i = 1; ; i++)
            {
                message.AsSpan().Fill(i);
                q.Put(message);
            }
        });
        victim.Start();
        byte[] first = q.Get(Bounded.Long);
        Assert.All(first.AsSpan(0, 1000).ToArray(), b => Assert.Equal(1, b));
        victim.Kill(); // most likely in the middle of copying a message
        Bounded.Join(victim);
        Bounded.Run(new mp.Process(() => q.Put([0])));
        int whole = 0;
        while (true)
        {
            byte[] item = q.Get(Bounded.Long);
            if (item.Length == 1)
            {
                break;
            }

            Assert.Equal(32 << 20, item.Length);
            Assert.True(item.All(b => b == item[0]), "a message was half-written");
            whole++;
        }

        Assert.InRange(whole, 0, 4);
        Assert.True(q.IsEmpty);
        string fd = $"/proc/self/fd/{q.Ring.Region.Handle.DangerousGetHandle()}";
        q.Dispose();
        Assert.False(File.Exists(fd) && new FileInfo(fd).LinkTarget?.StartsWith("/memfd:mp-queue", StringComparison.Ordinal) == true, "the descriptor outlived Dispose");
    }

    [Fact]
    public void A_queue_can_be_sent_to_a_running_process_over_a_connection()
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using (parentEnd)
        using (childEnd)
        {
            var worker = new mp.Process(() =>
            {
                using var q = childEnd.Recv<mp.Queue<string>>();
                q.Put("via a connection");
            });
            worker.Start();
            using var q = new mp.Queue<string>();
            parentEnd.Send(q);
            Assert.Equal("via a connection", q.Get(Bounded.Long));
            Bounded.Join(worker);
        }
    }

    [Fact]
    public async Task GetAsync_and_PutAsync_wait_without_holding_the_caller_and_honour_cancellation()
    {
        using var q = new mp.Queue<int>(maxSize: 1);
        using var cts = new CancellationTokenSource();
        ValueTask<int> get = q.GetAsync(cts.Token);
        Assert.False(get.IsCompleted);
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await get.AsTask().WaitAsync(Bounded.Long));

        ValueTask<int> waiting = q.GetAsync();
        var producer = new mp.Process<mp.Queue<int>>(static q => q.Put(5), q);
        producer.Start();
        Assert.Equal(5, await waiting.AsTask().WaitAsync(Bounded.Long));
        Bounded.Join(producer);

        await q.PutAsync(1);
        using var cts2 = new CancellationTokenSource();
        ValueTask blockedPut = q.PutAsync(2, cts2.Token);
        Assert.False(blockedPut.IsCompleted);
        cts2.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await blockedPut.AsTask().WaitAsync(Bounded.Long));
        ValueTask put3 = q.PutAsync(3);
        Assert.Equal(1, q.Get(Bounded.Long));
        await put3.AsTask().WaitAsync(Bounded.Long);
        Assert.Equal(3, q.Get(TimeSpan.Zero));
        Assert.True(q.IsEmpty);
    }

    [Fact]
    public async Task The_channel_views_carry_a_stream_from_a_child_until_it_completes()
    {
        using var q = new mp.Queue<int>(maxSize: 8);
        var producer = new mp.Process(() =>
        {
            ChannelWriter<int> writer = q.Writer;
            for (int i = 0; i < 100; i++)
            {
                writer.WriteAsync(i).AsTask().Wait();
            }

            writer.Complete();
        });
        producer.Start();
        var received = new List<int>();
        await foreach (int item in q.Reader.ReadAllAsync().WithCancellation(new CancellationTokenSource(Bounded.Long).Token))
        {
            received.Add(item);
        }

        Assert.Equal(Enumerable.Range(0, 100), received);
        Assert.True(q.Reader.CanCount);
        Assert.Equal(0, q.Reader.Count);
        Assert.False(q.Writer.TryWrite(1), "a completed queue refuses channel writes");
        await Assert.ThrowsAsync<ChannelClosedException>(async () => await q.Reader.ReadAsync());
        Assert.False(await q.Writer.WaitToWriteAsync());
        Bounded.Join(producer);
    }

    [Fact]
    public void PutMany_and_GetMany_move_batches_between_processes()
    {
        using var q = new mp.Queue<string>(maxSize: 50);
        var producer = new mp.Process(() => q.PutMany(Enumerable.Range(0, 1000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture))));
        producer.Start();
        var got = new List<string>();
        var buffer = new string[64];
        while (got.Count < 1000)
        {
            int n = q.GetMany(buffer, Bounded.Long);
            Assert.InRange(n, 1, 64);
            got.AddRange(buffer.Take(n));
        }

        Assert.Equal(Enumerable.Range(0, 1000).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)), got);
        Assert.Equal(0, q.GetMany(buffer, TimeSpan.Zero));
        Bounded.Join(producer);
    }

    [Fact]
    public void Unmanaged_items_and_byte_arrays_go_through_without_the_serializer_and_ints_allocate_nothing()
    {
        using var q = new mp.Queue<int>();
        for (int i = 0; i < 1000; i++)
        {
            q.Put(i);
            _ = q.Get();
        }

        int wrong = 0;
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 10_000; i++)
        {
            q.Put(i);
            wrong += q.Get() == i ? 0 : 1;
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, wrong);
        Assert.Equal(0, allocated);

        // A record is a 16-byte header and the payload, 8-byte aligned: an int takes 24 bytes of the ring.
        q.PutMany(new int[1000]);
        Assert.Equal(24_000, q.Ring.BytesInUse);
    }
}
