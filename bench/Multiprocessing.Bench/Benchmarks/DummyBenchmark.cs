using System.Diagnostics;
using System.Threading.Channels;
using Bench.Harness;
using D = Multiprocessing.Dummy;

namespace Bench.Benchmarks;

/// <summary>
/// The thread twins against the BCL they are built on, in the same run (no CPython here): Dummy <c>Queue&lt;T&gt;</c>
/// against a bare unbounded <see cref="Channel{T}"/> (one producer thread, one consumer thread, both blocking the same
/// way), and Dummy <c>Pool.Map</c> of a trivial function against <see cref="Parallel.For(int, int, Action{int})"/>.
/// The reference goes in the first column.
/// </summary>
public sealed class DummyBenchmark : Benchmark
{
    private const int Items = 1_000_000;
    private const int Samples = 21;
    private const double QueueGoal = 1.5;
    private const double MapGoal = 2;

    /// <inheritdoc/>
    public override string Name => "dummy";

    /// <inheritdoc/>
    public override string Title => "dummy — thread twins vs the BCL (first column: bare Channel / Parallel.For; ns per item, median)";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Note($"Queue: {Items:N0} ints, 1 producer thread and 1 consumer thread; the bare channel's consumer blocks as the Dummy queue does (TryRead, else wait on WaitToReadAsync).");
        context.Note($"Map: x => x + 1 over {Items:N0} ints; Dummy Pool of {Environment.ProcessorCount} threads, default chunk size; Parallel.For writes results[i] = i + 1.");

        var channelSamples = new List<double>();
        var queueSamples = new List<double>();
        var forSamples = new List<double>();
        var mapSamples = new List<double>();
        using var pool = new D.Pool();
        int[] inputs = Enumerable.Range(0, Items).ToArray();
        for (int s = 0; s < Samples + 1; s++)
        {
            double channel = NsPerItem(BareChannel);
            double queue = NsPerItem(DummyQueue);
            double parallel = NsPerItem(() =>
            {
                var results = new int[Items];
                Parallel.For(0, Items, i => results[i] = inputs[i] + 1);
                GC.KeepAlive(results);
            });
            double map = NsPerItem(() => GC.KeepAlive(pool.Map(x => x + 1, inputs)));
            if (s > 0) // the first round warms up
            {
                channelSamples.Add(channel);
                queueSamples.Add(queue);
                forSamples.Add(parallel);
                mapSamples.Add(map);
            }
        }

        Measurement channelM = Measurement.FromSamples(channelSamples, Quantity.Nanoseconds);
        Measurement queueM = Measurement.FromSamples(queueSamples, Quantity.Nanoseconds);
        Measurement forM = Measurement.FromSamples(forSamples, Quantity.Nanoseconds);
        Measurement mapM = Measurement.FromSamples(mapSamples, Quantity.Nanoseconds);
        return
        [
            new ResultRow("Queue<int> put+get vs bare Channel<int>", channelM, queueM) { Goal = new Goal($"within {QueueGoal}× of the channel", queueM.Value <= QueueGoal * channelM.Value) },
            new ResultRow("Pool.Map(x => x + 1) vs Parallel.For", forM, mapM) { Goal = new Goal($"within {MapGoal}× of Parallel.For", mapM.Value <= MapGoal * forM.Value) },
        ];
    }

    private static double NsPerItem(Action run)
    {
        long start = Stopwatch.GetTimestamp();
        run();
        return Stopwatch.GetElapsedTime(start).TotalNanoseconds / Items;
    }

    private static void BareChannel()
    {
        Channel<int> channel = Channel.CreateUnbounded<int>();
        var producer = new Thread(() =>
        {
            for (int i = 0; i < Items; i++)
            {
                channel.Writer.TryWrite(i);
            }
        });
        producer.Start();
        ChannelReader<int> reader = channel.Reader;
        long sum = 0;
        for (int n = 0; n < Items; n++)
        {
            int item;
            while (!reader.TryRead(out item))
            {
                reader.WaitToReadAsync().AsTask().Wait();
            }

            sum += item;
        }

        producer.Join();
        GC.KeepAlive(sum);
    }

    private static void DummyQueue()
    {
        var queue = new D.Queue<int>();
        var producer = new D.Process(() =>
        {
            for (int i = 0; i < Items; i++)
            {
                queue.Put(i);
            }
        });
        producer.Start();
        long sum = 0;
        for (int n = 0; n < Items; n++)
        {
            sum += queue.Get();
        }

        producer.Join();
        GC.KeepAlive(sum);
    }
}
