using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>
/// Shared memory: a <c>SharedValue&lt;int&gt;</c> incremented by two processes (under its lock, and with the atomic
/// <c>Increment</c>), bulk <c>SharedArray&lt;double&gt;</c> copies against a C memcpy, and what creating a named block costs.
/// </summary>
public sealed class ShmBenchmark : Benchmark
{
    private const int PerProcess = 100_000;
    private const int Runs = 5;
    private const int ArrayBytes = 32 << 20;
    private const int Windows = 8;
    private const int Blocks = 2;
    private const double WindowSeconds = 0.2;
    private const int Creates = 200;
    private const double LockGoalFactor = 10;
    private const double CopyGoalFactor = 1.2;

    /// <inheritdoc/>
    public override string Name => "shm";

    /// <inheritdoc/>
    public override string Title => "shm — 2 processes × 100k increments (ms, median wall time), SharedArray<double> bulk copies (GB/s), creating named blocks (µs)";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

        // CPython first, so nothing of ours runs in the background meanwhile.
        Measurement pyLocked, pyRaw, pyCopy, pyCreate;
        double pyFirstCreate, pyLost;
        string startMethod;
        using (JsonDocument doc = context.RunPython("shm.py", I($"{PerProcess}"), I($"{Runs}"), I($"{ArrayBytes}"), I($"{Windows}"), I($"{WindowSeconds}")))
        {
            JsonElement root = doc.RootElement;
            pyLocked = Samples(root.GetProperty("locked_ms"), Quantity.Milliseconds);
            pyRaw = Samples(root.GetProperty("raw_ms"), Quantity.Milliseconds);
            pyLost = root.GetProperty("raw_lost").EnumerateArray().Average(e => e.GetDouble());
            pyCopy = Samples(root.GetProperty("copy_gbps"), Quantity.GigabytesPerSecond);
            pyCreate = Samples(root.GetProperty("create_us"), Quantity.Microseconds);
            pyFirstCreate = root.GetProperty("first_create_us").GetDouble();
            startMethod = root.GetProperty("start_method").GetString() ?? "?";
        }

        // The first named block of a fresh process starts its tracker: measured in a child (no spare to take) and here.
        double firstInChild = FirstCreateInFreshChild();
        long start = Stopwatch.GetTimestamp();
        var first = new mp.SharedMemory(create: true, size: 4096);
        double firstHere = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        first.Close();
        first.Unlink();
        Measurement create = Measurement.FromSamples(Measure.MicrosecondsPerCall(Creates, 1, 20, () =>
        {
            var block = new mp.SharedMemory(create: true, size: 4096);
            block.Close();
            block.Unlink();
        }), Quantity.Microseconds);

        var locked = new List<double>();
        var atomic = new List<double>();
        for (int run = 0; run < Runs; run++)
        {
            locked.Add(TwoProcesses(useLock: true));
            atomic.Add(TwoProcesses(useLock: false));
        }

        string anchor = context.CProgram("shm_memcpy");
        var cRates = new List<double>();
        var ours = new List<double>();
        for (int block = 0; block < Blocks; block++)
        {
            using (JsonDocument doc = BenchContext.RunProgram(anchor, I($"{ArrayBytes}"), I($"{Windows / Blocks}"), I($"{WindowSeconds}")))
            {
                cRates.AddRange(doc.RootElement.GetProperty("samples_gbps").EnumerateArray().Select(e => e.GetDouble()));
            }

            ours.AddRange(CopyBandwidth(Windows / Blocks));
        }

        (double lockedAlloc, double atomicAlloc, double copyAlloc) = Allocations();
        Measurement oursLocked = Measurement.FromSamples(locked, Quantity.Milliseconds);
        Measurement oursAtomic = Measurement.FromSamples(atomic, Quantity.Milliseconds);
        Measurement cCopy = Measurement.FromSamples(cRates, Quantity.GigabytesPerSecond);
        Measurement oursCopy = Measurement.FromSamples(ours, Quantity.GigabytesPerSecond);
        double lockLimit = pyLocked.Value / LockGoalFactor;
        double copyLimit = cCopy.Value / CopyGoalFactor;

        context.Note(I($"Increments: {Runs} runs; each of 2 processes waits for a start signal, then times its own loop of {PerProcess:N0} increments (Stopwatch / perf_counter, both CLOCK_MONOTONIC, shared by all processes); a run's figure is the last end minus the first start, so starting and ending the processes is not counted. CPython ({startMethod}): Value('i') with `with lock: v.value += 1` (lock = v.get_lock()), and RawValue('i') with a bare `v.value += 1`, which races: it lost {pyLost:N0} of {2 * PerProcess:N0} updates on average. Ours: SharedValue<int> with `using (lk.EnterScope()) v.Value += 1` (lk = v.GetLock(), an RLock, as CPython's), and SharedValue<int>(locked: false).Increment() (Interlocked.Increment on the mapping; the final value is checked to be exact)."));
        context.Note(I($"Ops/s: CPython under the lock {2 * PerProcess / pyLocked.Value / 1000:0.00} M/s, ours {2 * PerProcess / oursLocked.Value / 1000:0.00} M/s; without the lock CPython (racy) {2 * PerProcess / pyRaw.Value / 1000:0.00} M/s, ours (atomic) {2 * PerProcess / oursAtomic.Value / 1000:0.00} M/s."));
        context.Note(I($"Copies: {ArrayBytes >> 20} MiB each way per iteration (into the shared memory from a private buffer, then back out into another); GB/s = 10^9 bytes moved per second, median of {Windows} windows of about {WindowSeconds} s, every page touched first. C anchor: bench/c/shm_memcpy.c (gcc -O2), memcpy into and out of a MAP_SHARED memfd mapping; ours: SharedArray<double>.CopyFrom(double[]) and CopyTo(double[]); the two take turns in {Blocks} blocks. CPython: RawArray('d') copied through memoryview casts (`dst[:] = src`, a memcpy: the fastest way CPython has; `arr[:] = list` is far slower)."));
        context.Note(I($"Creating: the first SharedMemory(create: true) of a process starts its tracker — CPython spawns its resource tracker (measured: {pyFirstCreate:0} µs); ours hands a start request to a spare child if one is ready, else spawns one (the call returns once the child is started; its runtime boots in the background). Ours measured {firstInChild:0} µs in a fresh child (no spare: posix_spawn) and {firstHere:0} µs in this process. Steady state: create 4 KiB + close + unlink, {Creates} calls after 20 warm-up ones, median; ours also takes the block's shared flock and sends its descriptor to the tracker (and tells it to forget on unlink)."));
        context.Note(I($"Allocations (ours, this thread, steady state): {lockedAlloc:0.##} B per locked increment, {atomicAlloc:0.##} B per Increment(), {copyAlloc:0.##} B per {ArrayBytes >> 20} MiB CopyFrom + CopyTo."));

        return
        [
            new ResultRow(I($"2 processes × {PerProcess / 1000}k increments under the lock: CPython Value('i') vs ours SharedValue<int> + GetLock()"), pyLocked, oursLocked)
            {
                Goal = new Goal(I($"≥ {LockGoalFactor}× CPython (≤ {oursLocked.Format(lockLimit)})"), oursLocked.Value <= lockLimit),
            },
            new ResultRow(I($"2 processes × {PerProcess / 1000}k increments without a lock: CPython RawValue `v.value += 1` (racy) vs ours Increment() (atomic)"), pyRaw, oursAtomic),
            new ResultRow(I($"{ArrayBytes >> 20} MiB in + out of shared memory: C memcpy (in the CPython column) vs ours SharedArray<double>.CopyFrom/CopyTo"), cCopy, oursCopy)
            {
                Goal = new Goal(I($"within {CopyGoalFactor}× memcpy (≥ {oursCopy.Format(copyLimit)})"), oursCopy.Value >= copyLimit),
            },
            new ResultRow(I($"{ArrayBytes >> 20} MiB in + out of shared memory: CPython RawArray('d') memoryview copy vs ours SharedArray<double>.CopyFrom/CopyTo"), pyCopy, oursCopy),
            new ResultRow("first SharedMemory(create: true) of a process (starts the tracker): CPython vs ours in a fresh child", Measurement.Exact(pyFirstCreate, Quantity.Microseconds), Measurement.Exact(firstInChild, Quantity.Microseconds)),
            new ResultRow("SharedMemory 4 KiB create + close + unlink: CPython vs ours", pyCreate, create),
        ];
    }

    private static Measurement Samples(JsonElement samples, Quantity quantity)
        => Measurement.FromSamples(samples.EnumerateArray().Select(e => e.GetDouble()).ToList(), quantity);

    /// <summary>Two children increment one SharedValue<int> <see cref="PerProcess"/> times each; returns the wall time in ms of their loops.</summary>
    private static double TwoProcesses(bool useLock)
    {
        using var counter = new mp.SharedValue<int>(0, locked: useLock);
        using var ready = new mp.SharedValue<int>(0, locked: false);
        using var times = new mp.SharedArray<long>(4, locked: false);
        using var gate = new mp.Lock();
        gate.Acquire();
        var workers = new mp.Process[2];
        for (int w = 0; w < workers.Length; w++)
        {
            int slot = w * 2;
            workers[w] = new mp.Process(() =>
            {
                ready.Increment();
                gate.Acquire(); // the start signal: the parent holds the gate until both are ready
                gate.Release();
                long t0 = Stopwatch.GetTimestamp();
                if (useLock)
                {
                    mp.ILock lk = counter.GetLock();
                    for (int i = 0; i < PerProcess; i++)
                    {
                        using (lk.EnterScope())
                        {
                            counter.Value += 1;
                        }
                    }
                }
                else
                {
                    for (int i = 0; i < PerProcess; i++)
                    {
                        counter.Increment();
                    }
                }

                times[slot] = t0;
                times[slot + 1] = Stopwatch.GetTimestamp();
            });
            workers[w].Start();
        }

        while (ready.Value < workers.Length)
        {
            Thread.Sleep(1); // bench only: both children must be past their start-up before the clock starts
        }

        gate.Release();
        foreach (mp.Process worker in workers)
        {
            if (!worker.Join(TimeSpan.FromSeconds(60)) || worker.ExitCode != 0)
            {
                throw new InvalidOperationException($"an incrementing child failed (exit code {worker.ExitCode})");
            }
        }

        if (counter.Value != 2 * PerProcess)
        {
            throw new InvalidOperationException($"lost updates: {counter.Value} instead of {2 * PerProcess}");
        }

        long first = Math.Min(times[0], times[2]);
        long last = Math.Max(times[1], times[3]);
        return (last - first) * 1000.0 / Stopwatch.Frequency;
    }

    private static double[] CopyBandwidth(int windows)
    {
        int n = ArrayBytes / sizeof(double);
        using var shared = new mp.SharedArray<double>(n, locked: false);
        double[] source = Enumerable.Range(0, n).Select(i => (double)i).ToArray();
        double[] back = new double[n];
        shared.CopyFrom(source);
        shared.CopyTo(back);
        var samples = new double[windows];
        for (int w = 0; w < windows; w++)
        {
            double copied = 0;
            long start = Stopwatch.GetTimestamp();
            double elapsed;
            do
            {
                shared.CopyFrom(source);
                shared.CopyTo(back);
                copied += 2.0 * ArrayBytes;
                elapsed = Stopwatch.GetElapsedTime(start).TotalSeconds;
            }
            while (elapsed < WindowSeconds);
            samples[w] = copied / elapsed / 1e9;
        }

        return samples;
    }

    private static double FirstCreateInFreshChild()
    {
        using var result = new mp.SharedValue<double>(0, locked: false);
        var child = new mp.Process(() =>
        {
            long start = Stopwatch.GetTimestamp();
            var block = new mp.SharedMemory(create: true, size: 4096);
            result.Value = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
            block.Close();
            block.Unlink();
        });
        child.Start();
        if (!child.Join(TimeSpan.FromSeconds(60)) || child.ExitCode != 0)
        {
            throw new InvalidOperationException($"the creating child failed (exit code {child.ExitCode})");
        }

        return result.Value;
    }

    private static (double Locked, double Atomic, double Copy) Allocations()
    {
        using var counter = new mp.SharedValue<int>(0);
        mp.ILock lk = counter.GetLock();
        void LockedIncrement()
        {
            using (lk.EnterScope())
            {
                counter.Value += 1;
            }
        }

        void AtomicIncrement() => counter.Increment();
        using var shared = new mp.SharedArray<double>(ArrayBytes / sizeof(double), locked: false);
        double[] buffer = new double[shared.Length];
        void Copy()
        {
            shared.CopyFrom(buffer);
            shared.CopyTo(buffer);
        }

        Measure.WarmUp(TimeSpan.FromMilliseconds(100), LockedIncrement);
        Measure.WarmUp(TimeSpan.FromMilliseconds(100), AtomicIncrement);
        Copy();
        return (Measure.AllocatedBytesPerCall(100_000, LockedIncrement), Measure.AllocatedBytesPerCall(100_000, AtomicIncrement), Measure.AllocatedBytesPerCall(10, Copy));
    }
}
