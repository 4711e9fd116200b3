using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>
/// <c>Queue</c> between processes: 1 producer process → 1 consumer with ints, 1 KiB and 1 MiB messages, and 4 producer
/// processes → 4 consumer processes, against CPython's <c>multiprocessing.Queue</c> and a C SPSC ring in shared memory;
/// shared memory per queued item; allocations.
/// </summary>
public sealed partial class QueueBenchmark : Benchmark
{
    private const int Repeats = 3;
    private const int PythonInts = 200_000, PythonKib = 100_000, PythonMib = 500;
    private const int Ints = 2_000_000, Kib = 500_000, Mib = 2_000;
    private const int Batch = 64;
    private const int Kilobyte = 1024, Megabyte = 1 << 20;
    private const int MemoryItems = 100_000;
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(60);

    /// <inheritdoc/>
    public override string Name => "queue";

    /// <inheritdoc/>
    public override string Title => "queue — messages per second between processes (median of runs), shared memory per queued item, allocations";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

        Measurement pyInts, pyKib, pyMib, pyFour;
        string startMethod;
        using (JsonDocument doc = context.RunPython("mpqueue.py", I($"{PythonInts}"), I($"{PythonKib}"), I($"{PythonMib}"), I($"{Repeats}")))
        {
            JsonElement samples = doc.RootElement.GetProperty("samples_msgs_per_s");
            pyInts = Rate(samples.GetProperty("ints"));
            pyKib = Rate(samples.GetProperty("kib"));
            pyMib = Rate(samples.GetProperty("mib"));
            pyFour = Rate(samples.GetProperty("four"));
            startMethod = doc.RootElement.GetProperty("start_method").GetString() ?? "?";
        }

        string ring = context.CProgram("spsc_ring");
        Measurement Ring(int perWindow, int size)
        {
            using JsonDocument doc = BenchContext.RunProgram(ring, "5", I($"{perWindow}"), I($"{size}"));
            return Rate(doc.RootElement.GetProperty("samples_msgs_per_s"));
        }

        // Ours, each workload a few times; the C ring's runs sit between ours, so both see the same machine.
        var ints = new List<double>();
        var intBatches = new List<double>();
        var kib = new List<double>();
        var mib = new List<double>();
        var mibInto = new List<double>();
        var four = new List<double>();
        var ringInts = new List<double>();
        var ringKib = new List<double>();
        var ringMib = new List<double>();
        void Step(string what, List<double> into, Func<double> run)
        {
            long start = Stopwatch.GetTimestamp();
            double rate = run();
            into.Add(rate);
            Console.Error.WriteLine(I($"  {what}: {rate:N0} msg/s ({Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} s)"));
        }

        _ = OneToOneInts(Ints / 10, 1); // warm-up (JIT)
        for (int r = 0; r < Repeats; r++)
        {
            Step("ours ints", ints, () => OneToOneInts(Ints, 1));
            Step("ours int batches", intBatches, () => OneToOneInts(Ints, Batch));
            Step("C ring 8 B", ringInts, () => Ring(5_000_000, 8).Value);
            Step("ours 1 KiB", kib, () => OneToOneBytes(Kib, Kilobyte));
            Step("C ring 1 KiB", ringKib, () => Ring(200_000, Kilobyte).Value);
            Step("ours 1 MiB", mib, () => OneToOneBytes(Mib, Megabyte));
            Step("ours 1 MiB into a buffer", mibInto, () => OneToOneBytes(Mib, Megabyte, intoBuffer: true));
            Step("C ring 1 MiB", ringMib, () => Ring(500, Megabyte).Value);
            Step("ours 4x4", four, () => FourByFour(Ints));
        }

        Measurement oursInts = Measurement.FromSamples(ints, Quantity.MessagesPerSecond);
        Measurement oursBatches = Measurement.FromSamples(intBatches, Quantity.MessagesPerSecond);
        Measurement oursKib = Measurement.FromSamples(kib, Quantity.MessagesPerSecond);
        Measurement oursMib = Measurement.FromSamples(mib, Quantity.MessagesPerSecond);
        Measurement oursMibInto = Measurement.FromSamples(mibInto, Quantity.MessagesPerSecond);
        Measurement oursFour = Measurement.FromSamples(four, Quantity.MessagesPerSecond);
        Measurement cInts = Measurement.FromSamples(ringInts, Quantity.MessagesPerSecond);
        Measurement cKib = Measurement.FromSamples(ringKib, Quantity.MessagesPerSecond);
        Measurement cMib = Measurement.FromSamples(ringMib, Quantity.MessagesPerSecond);
        (double perInt, double perKib) = BytesPerQueuedItem();
        double allocated = AllocatedPerPutGet();

        string Gbps(double messagesPerSecond, int size) => I($"{messagesPerSecond * size / 1e9:0.00} GB/s");
        context.Note(I($"CPython: multiprocessing.Queue ({startMethod} start method), the producer(s) spawned first and waiting on an Event; timed from setting it until the last item was received (4×4: until every consumer process reported its count after a None sentinel each). {PythonInts:N0} ints, {PythonKib:N0} × 1 KiB, {PythonMib:N0} × 1 MiB bytes; {Repeats} runs, median."));
        context.Note(I($"Ours: mp.Queue<int> / mp.Queue<byte[]> (raw bytes, no serializer), the producer child waiting on a go queue; timed the same way. {Ints:N0} ints (Put/Get one by one, and PutMany/GetMany in batches of {Batch}), {Kib:N0} × 1 KiB, {Mib:N0} × 1 MiB (each Get returns a new byte[], as CPython's get returns a new bytes; and GetBytesInto one reused buffer); 4×4: {Ints:N0} ints from 4 producer processes to 4 consumer processes. {Repeats} runs, median."));
        context.Note("C limit: bench/c/spsc_ring.c (gcc -O2): one producer, one forked consumer, fixed 64-byte-aligned slots in MAP_SHARED memory, both sides busy-waiting (no futex), the consumer memcpys each message out and publishes its progress every 64 messages; 5 windows per run, one run between each of our repeats; median of all windows.");
        context.Note(I($"Shared memory per queued item: the memfd's allocated bytes (fstat st_blocks) with {MemoryItems:N0} items queued and no consumer, minus the empty queue's, divided by the item count. A record is a 16-byte header plus the payload, 8-byte aligned (a byte[] adds one byte for null)."));
        context.Note(I($"GB/s (10^9 bytes/s) of the message rows: CPython 1 KiB {Gbps(pyKib.Value, Kilobyte)}, ours {Gbps(oursKib.Value, Kilobyte)}, C {Gbps(cKib.Value, Kilobyte)}; CPython 1 MiB {Gbps(pyMib.Value, Megabyte)}, ours {Gbps(oursMib.Value, Megabyte)} (GetBytesInto {Gbps(oursMibInto.Value, Megabyte)}), C {Gbps(cMib.Value, Megabyte)}."));

        return
        [
            new ResultRow("ints, 1 producer process → 1 consumer: CPython put/get vs ours Put/Get", pyInts, oursInts)
            {
                Goal = new Goal("≥ 5 M msg/s and ≥ 40× CPython", oursInts.Value >= 5e6 && oursInts.Value >= 40 * pyInts.Value),
            },
            new ResultRow(I($"ints, 1 → 1: CPython put/get vs ours PutMany/GetMany ({Batch} per call)"), pyInts, oursBatches),
            new ResultRow("ints, 1 → 1: C SPSC ring, 8-byte messages (in the CPython column) vs ours Put/Get", cInts, oursInts)
            {
                Goal = new Goal("moonshot: within 3× of the ring", oursInts.Value * 3 >= cInts.Value),
            },
            new ResultRow(I($"ints, 1 → 1: C SPSC ring (in the CPython column) vs ours PutMany/GetMany"), cInts, oursBatches),
            new ResultRow("1 KiB, 1 → 1: CPython vs ours", pyKib, oursKib)
            {
                Goal = new Goal(I($"≥ 1 GB/s (ours {Gbps(oursKib.Value, Kilobyte)})"), oursKib.Value * Kilobyte >= 1e9),
            },
            new ResultRow("1 KiB, 1 → 1: C SPSC ring (in the CPython column) vs ours", cKib, oursKib),
            new ResultRow("1 MiB, 1 → 1: CPython get vs ours Get (a new byte[] per item)", pyMib, oursMib)
            {
                Goal = new Goal(I($"≥ 3 GB/s (ours {Gbps(oursMib.Value, Megabyte)})"), oursMib.Value * Megabyte >= 3e9),
            },
            new ResultRow("1 MiB, 1 → 1: CPython get vs ours GetBytesInto (the consumer's own buffer)", pyMib, oursMibInto)
            {
                Goal = new Goal(I($"≥ 3 GB/s (ours {Gbps(oursMibInto.Value, Megabyte)})"), oursMibInto.Value * Megabyte >= 3e9),
            },
            new ResultRow("1 MiB, 1 → 1: C SPSC ring (in the CPython column) vs ours GetBytesInto", cMib, oursMibInto),
            new ResultRow("ints, 4 producer processes → 4 consumer processes: CPython vs ours", pyFour, oursFour),
            new ResultRow("shared memory per queued int (ours)", null, Measurement.Exact(perInt, Quantity.Bytes)),
            new ResultRow("shared memory per queued 1 KiB byte[] (ours)", null, Measurement.Exact(perKib, Quantity.Bytes)),
            new ResultRow("allocated per Put + Get of an int, one process (ours)", null, Measurement.Exact(allocated, Quantity.Bytes))
            {
                Goal = new Goal("0 B", allocated < 1),
            },
        ];
    }

    private static Measurement Rate(JsonElement samples)
        => Measurement.FromSamples(samples.EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.MessagesPerSecond);

    private static double OneToOneInts(int n, int batch)
    {
        using var q = new mp.Queue<int>();
        using var control = new Control();
        var producer = new mp.Process<mp.Queue<int>, Control, int, int>(ProduceInts, q, control, n, batch, name: "queue-producer");
        producer.Start();
        control.Ready.Get(Limit);
        long start = Stopwatch.GetTimestamp();
        control.Go.Put(0);
        if (batch == 1)
        {
            for (int i = 0; i < n; i++)
            {
                if (q.Get() != i)
                {
                    throw new InvalidOperationException("ints came out of order");
                }
            }
        }
        else
        {
            var buffer = new int[batch];
            int received = 0;
            while (received < n)
            {
                int count = q.GetMany(buffer);
                for (int i = 0; i < count; i++)
                {
                    if (buffer[i] != received + i)
                    {
                        throw new InvalidOperationException("ints came out of order");
                    }
                }

                received += count;
            }
        }

        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Join(producer);
        return n / seconds;
    }

    private static void ProduceInts(mp.Queue<int> q, Control control, int n, int batch)
    {
        control.Ready.Put(0);
        _ = control.Go.Get();
        if (batch == 1)
        {
            for (int i = 0; i < n; i++)
            {
                q.Put(i);
            }
        }
        else
        {
            var chunk = new int[batch];
            for (int i = 0; i < n; i += batch)
            {
                int count = Math.Min(batch, n - i);
                for (int j = 0; j < count; j++)
                {
                    chunk[j] = i + j;
                }

                q.PutMany(chunk.AsSpan(0, count));
            }
        }
    }

    private static double OneToOneBytes(int n, int size, bool intoBuffer = false)
    {
        byte[] buffer = new byte[size];
        using var q = new mp.Queue<byte[]>();
        using var control = new Control();
        var producer = new mp.Process<mp.Queue<byte[]>, Control, int, int>(ProduceBytes, q, control, n, size, name: "queue-producer");
        producer.Start();
        control.Ready.Get(Limit);
        long start = Stopwatch.GetTimestamp();
        control.Go.Put(0);
        for (int i = 0; i < n; i++)
        {
            if ((intoBuffer ? q.GetBytesInto(buffer) : q.Get().Length) != size)
            {
                throw new InvalidOperationException("a message changed size");
            }
        }

        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Join(producer);
        return n / seconds;
    }

    private static void ProduceBytes(mp.Queue<byte[]> q, Control control, int n, int size)
    {
        byte[] message = new byte[size];
        message.AsSpan().Fill((byte)'x');
        control.Ready.Put(0);
        _ = control.Go.Get();
        for (int i = 0; i < n; i++)
        {
            q.Put(message);
        }
    }

    private static double FourByFour(int n)
    {
        using var q = new mp.Queue<int>();
        using var control = new Control();
        using var counts = new mp.Queue<int>();
        var producers = Enumerable.Range(0, 4).Select(_ => new mp.Process<mp.Queue<int>, Control, int, int>(ProduceInts, q, control, n / 4, 1, name: "queue-producer")).ToList();
        var consumers = Enumerable.Range(0, 4).Select(_ => new mp.Process<mp.Queue<int>, mp.Queue<int>>(Consume, q, counts, name: "queue-consumer")).ToList();
        producers.ForEach(p => p.Start());
        consumers.ForEach(p => p.Start());
        for (int i = 0; i < producers.Count; i++)
        {
            control.Ready.Get(Limit);
        }

        long start = Stopwatch.GetTimestamp();
        control.Go.PutMany([0, 0, 0, 0]);
        producers.ForEach(Join);
        q.PutMany([-1, -1, -1, -1]);
        int total = 0;
        for (int i = 0; i < consumers.Count; i++)
        {
            total += counts.Get(Limit);
        }

        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        consumers.ForEach(Join);
        return total == n / 4 * 4 ? total / seconds : throw new InvalidOperationException($"{total} of {n} ints arrived");
    }

    private static void Consume(mp.Queue<int> q, mp.Queue<int> counts)
    {
        int count = 0;
        while (q.Get() >= 0)
        {
            count++;
        }

        counts.Put(count);
    }

    private static void Join(mp.Process process)
    {
        if (!process.Join(Limit) || process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{process.Name} did not end cleanly (exit code {process.ExitCode}): {process.Error}");
        }

        process.Dispose();
    }

    private static (double PerInt, double PerKib) BytesPerQueuedItem()
    {
        using var ints = new mp.Queue<int>();
        ints.Put(0);
        long before = MemfdAllocatedBytes();
        for (int i = 0; i < MemoryItems; i++)
        {
            ints.Put(i);
        }

        double perInt = (MemfdAllocatedBytes() - before) / (double)MemoryItems;
        ints.Dispose();

        using var kib = new mp.Queue<byte[]>();
        byte[] message = new byte[Kilobyte];
        kib.Put(message);
        before = MemfdAllocatedBytes();
        for (int i = 0; i < MemoryItems; i++)
        {
            kib.Put(message);
        }

        return (perInt, (MemfdAllocatedBytes() - before) / (double)MemoryItems);
    }

    private static double AllocatedPerPutGet()
    {
        using var q = new mp.Queue<int>();
        void PutGet()
        {
            q.Put(1);
            _ = q.Get();
        }

        Measure.WarmUp(TimeSpan.FromMilliseconds(200), PutGet);
        return Measure.AllocatedBytesPerCall(100_000, PutGet);
    }

    /// <summary>The bytes allocated to every queue memfd of this process (st_blocks of /proc/self/fd/N → memfd:mp-queue).</summary>
    private static unsafe long MemfdAllocatedBytes()
    {
        long total = 0;
        byte* stat = stackalloc byte[256];
        foreach (string fd in Directory.GetFiles("/proc/self/fd"))
        {
            string? target = null;
            try
            {
                target = new FileInfo(fd).LinkTarget;
            }
            catch (IOException)
            {
            }

            if (target is not null && target.StartsWith("/memfd:mp-queue", StringComparison.Ordinal) && StatPath(fd, stat) == 0)
            {
                total += *(long*)(stat + 64) * 512; // st_blocks (x86_64 and arm64 layouts)
            }
        }

        return total;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8)]
    private static unsafe partial int StatPath(string path, byte* buffer);

    /// <summary>The start signals of a run: each producer puts on <see cref="Ready"/>, then waits for an item on <see cref="Go"/>.</summary>
    private sealed class Control : IDisposable
    {
        public mp.Queue<int> Ready { get; } = new();

        public mp.Queue<int> Go { get; } = new();

        public void Dispose()
        {
            Ready.Dispose();
            Go.Dispose();
        }
    }
}
