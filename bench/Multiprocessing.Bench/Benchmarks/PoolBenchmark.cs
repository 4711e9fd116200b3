using System.Globalization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>
/// <c>Pool(2)</c> overheads against CPython's: creation, <c>Map</c> of trivial tasks (default chunking and chunk size 1),
/// the <c>ApplyAsync</c> round trip, and the speedup of CPU-bound tasks on two cores.
/// </summary>
public sealed class PoolBenchmark : Benchmark
{
    private const int Workers = 2;
    private const int CreateRuns = 5;
    private const int DefaultMapItems = 100_000;
    private const int ChunkOneItems = 20_000;
    private const int MapRuns = 3;
    private const int ApplyRuns = 2000;
    private const int CpuTasks = 8;

    /// <summary>How many times the serial and the pooled CPU-bound runs take turns (medians are reported).</summary>
    private const int CpuRepeats = 3;

    /// <summary>Iterations of <see cref="Burn"/> per task: about 0.1–0.2 s of one core here.</summary>
    private const long BurnIterations = 150_000_000;

    /// <inheritdoc/>
    public override string Name => "pool";

    /// <inheritdoc/>
    public override string Title => "pool — Pool(2): creation, Map and ApplyAsync overheads, CPU-bound speedup";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Python spawn = Python.Run(context, "spawn");
        Python fork = Python.Run(context, "fork");

        // Creation: the constructor and one trivial call answered, so the workers are really up.
        double[] create = Measure.Milliseconds(CreateRuns, () =>
        {
            using var pool = new mp.Pool(Workers);
            _ = pool.Apply(() => 1);
        });

        double[] mapDefault;
        double[] mapChunkOne;
        double[] apply;
        double[] applySync;
        double serialMs;
        double poolMs;
        using (var pool = new mp.Pool(Workers))
        {
            int[] big = Enumerable.Range(0, DefaultMapItems).ToArray();
            int[] small = Enumerable.Range(0, ChunkOneItems).ToArray();
            _ = pool.Map(static x => x, big);
            // Warm-up long enough for the workers' JIT to reach its optimized tier on the chunk-by-chunk path (a
            // fresh worker runtime tiers up over its first tens of thousands of tasks; CPython has no such phase).
            for (int i = 0; i < 3; i++)
            {
                _ = pool.Map(static x => x, small, chunkSize: 1);
            }
            mapDefault = Measure.Milliseconds(MapRuns, () => _ = pool.Map(static x => x, big)).Select(ms => ms * 1000 / DefaultMapItems).ToArray();
            mapChunkOne = Measure.Milliseconds(MapRuns, () => _ = pool.Map(static x => x, small, chunkSize: 1)).Select(ms => ms * 1000 / ChunkOneItems).ToArray();

            for (int i = 0; i < 500; i++)
            {
                _ = pool.ApplyAsync(static () => 1).Get();
            }

            apply = Measure.Milliseconds(ApplyRuns, () => _ = pool.ApplyAsync(static () => 1).Get()).Select(ms => ms * 1000).ToArray();
            for (int i = 0; i < 500; i++)
            {
                _ = pool.Apply(static () => 1);
            }

            applySync = Measure.Milliseconds(ApplyRuns, () => _ = pool.Apply(static () => 1)).Select(ms => ms * 1000).ToArray();

            // Serial and pooled take turns, three times each (medians): one shot of each is at the mercy of this shared VM.
            _ = Burn(1000);
            _ = pool.Map(Burn, [1000L, 1000L], chunkSize: 1);
            var serials = new double[CpuRepeats];
            var pooled = new double[CpuRepeats];
            for (int repeat = 0; repeat < CpuRepeats; repeat++)
            {
                var serial = System.Diagnostics.Stopwatch.StartNew();
                for (int i = 0; i < CpuTasks; i++)
                {
                    _ = Burn(BurnIterations);
                }

                serials[repeat] = serial.Elapsed.TotalMilliseconds;
                var parallel = System.Diagnostics.Stopwatch.StartNew();
                _ = pool.Map(Burn, Enumerable.Repeat(BurnIterations, CpuTasks), chunkSize: 1);
                pooled[repeat] = parallel.Elapsed.TotalMilliseconds;
            }

            Array.Sort(serials);
            Array.Sort(pooled);
            serialMs = serials[CpuRepeats / 2];
            poolMs = pooled[CpuRepeats / 2];
        }

        Measurement oursCreate = Measurement.FromSamples(create, Quantity.Milliseconds);
        Measurement oursDefault = Measurement.FromSamples(mapDefault, Quantity.Microseconds);
        Measurement oursChunkOne = Measurement.FromSamples(mapChunkOne, Quantity.Microseconds);
        Measurement oursApply = Measurement.FromSamples(apply, Quantity.Microseconds);
        Measurement oursApplySync = Measurement.FromSamples(applySync, Quantity.Microseconds);
        double oursSpeedup = serialMs / poolMs;
        double spawnSpeedup = spawn.SerialMs / spawn.PoolMs;

        context.Note($"CPython: bench/python/pool.py, multiprocessing.Pool({Workers}) with the spawn and the fork start method (Linux's default in 3.11); ours: new Pool({Workers}) (worker processes are fresh runtimes, like spawn; the first may be the library's warm spare child).");
        context.Note($"Creation: constructor + one trivial apply answered, median of {CreateRuns}, each pool terminated before the next. Map: {DefaultMapItems:N0} trivial tasks (x => x) with the default chunking, {ChunkOneItems:N0} with chunk size 1 (after {3 * ChunkOneItems:N0} warm-up tasks), µs per task, median of {MapRuns}. Apply: ApplyAsync(() => 1).Get() (apply_async(f, (1,)).get()), median of {ApplyRuns:N0} after a warm-up.");
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"CPU-bound: {CpuTasks} equal tasks run one after another in the parent, then through Map(chunkSize: 1) on the pool, taking turns {CpuRepeats} times (medians; CPython the same); speedup = serial / pool. Ours: {serialMs:0} ms serial, {poolMs:0} ms pooled = {oursSpeedup:0.00}×; CPython spawn: {spawn.SerialMs:0} / {spawn.PoolMs:0} ms = {spawnSpeedup:0.00}×; fork: {fork.SerialMs / fork.PoolMs:0.00}×. The machine has 2 cores shared with other work, which caps every side's speedup."));

        return
        [
            new ResultRow("create Pool(2), first result: CPython spawn vs ours", spawn.Create, oursCreate)
            {
                Goal = new Goal($"≤ CPython's ({spawn.Create})", oursCreate.Value <= spawn.Create.Value),
            },
            new ResultRow("create Pool(2), first result: CPython fork vs ours", fork.Create, oursCreate),
            new ResultRow($"Map of {DefaultMapItems:N0} trivial tasks, default chunking, per task: CPython spawn vs ours", spawn.MapDefault, oursDefault)
            {
                Goal = new Goal($"no worse than CPython ({spawn.MapDefault})", oursDefault.Value <= spawn.MapDefault.Value),
            },
            new ResultRow($"Map of {ChunkOneItems:N0} trivial tasks, chunkSize 1, per task: CPython spawn vs ours", spawn.MapChunkOne, oursChunkOne)
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≥ 10× lower than CPython (≤ {oursChunkOne.Format(spawn.MapChunkOne.Value / 10)})"), oursChunkOne.Value <= spawn.MapChunkOne.Value / 10),
            },
            new ResultRow("Map, chunkSize 1, per task: CPython fork vs ours", fork.MapChunkOne, oursChunkOne),
            new ResultRow("ApplyAsync round trip: CPython spawn vs ours", spawn.Apply, oursApply)
            {
                Goal = new Goal("≤ 20 µs", oursApply.Value <= 20),
            },
            new ResultRow("Apply round trip (the blocked caller receives its own result): CPython apply_async().get() vs ours Apply", spawn.Apply, oursApplySync)
            {
                Goal = new Goal("≤ 20 µs", oursApplySync.Value <= 20),
            },
            new ResultRow($"{CpuTasks} CPU-bound tasks on Pool(2), wall time (speedup in the notes)", spawn.Pool, Measurement.Exact(poolMs, Quantity.Milliseconds))
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"speedup ≥ 1.9× (ours {oursSpeedup:0.00}×, CPython {spawnSpeedup:0.00}×)"), oursSpeedup >= 1.9),
            },
        ];
    }

    /// <summary>A CPU-bound task: the twin of <c>burn</c> in pool.py, sized for a compiled language.</summary>
    private static long Burn(long n)
    {
        long total = 0;
        for (long i = 0; i < n; i++)
        {
            total += i * i % 7;
        }

        return total;
    }

    private sealed record Python(Measurement Create, Measurement MapDefault, Measurement MapChunkOne, Measurement Apply, Measurement Pool, double SerialMs, double PoolMs)
    {
        public static Python Run(BenchContext context, string method)
        {
            using JsonDocument doc = context.RunPython("pool.py", method);
            JsonElement root = doc.RootElement;
            Measurement Samples(string name, Quantity quantity)
                => Measurement.FromSamples(root.GetProperty(name).EnumerateArray().Select(e => e.GetDouble()).ToList(), quantity);

            double serial = root.GetProperty("cpu_serial_ms").GetDouble();
            double pooled = root.GetProperty("cpu_pool_ms").GetDouble();
            return new Python(
                Samples("create_ms", Quantity.Milliseconds),
                Samples("map_default_us", Quantity.Microseconds),
                Samples("map_chunk1_us", Quantity.Microseconds),
                Samples("apply_us", Quantity.Microseconds),
                Measurement.Exact(pooled, Quantity.Milliseconds),
                serial,
                pooled);
        }
    }
}
