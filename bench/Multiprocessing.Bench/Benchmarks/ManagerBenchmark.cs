using System.Globalization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>Proxy calls through a manager (list append, dictionary set and get, one caller) and manager start time, against CPython's.</summary>
public sealed class ManagerBenchmark : Benchmark
{
    private const int Calls = 20_000;
    private const int Runs = 3;
    private const int StartRuns = 5;
    private const double GoalFactor = 4;

    /// <inheritdoc/>
    public override string Name => "manager";

    /// <inheritdoc/>
    public override string Title => "manager — proxy calls (µs per call, one caller) and Manager() start";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        using JsonDocument doc = context.RunPython("manager.py", Calls.ToString(CultureInfo.InvariantCulture));
        JsonElement root = doc.RootElement;
        Measurement PerCall(string name) => Measurement.FromSamples(root.GetProperty(name).EnumerateArray().Select(e => 1e6 / e.GetDouble()).ToList(), Quantity.Microseconds);
        Measurement pythonStart = Measurement.FromSamples(root.GetProperty("start_ms").EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.Milliseconds);

        Measurement ourStart = Measurement.FromSamples(Measure.Milliseconds(StartRuns, () =>
        {
            using var manager = new mp.Manager();
            manager.List<int>().Add(1);
        }), Quantity.Milliseconds);

        Measurement append, set, get, concurrent;
        using (var manager = new mp.Manager())
        {
            manager.Register<IBenchAdder>(() => new BenchAdder());
            IBenchAdder adder = manager.Create<IBenchAdder>();

            mp.ListProxy<int> list = manager.List<int>();
            IDictionary<int, int> dictionary = manager.Dictionary<int, int>();
            for (int i = 0; i < 1000; i++)
            {
                list.Add(i);
                dictionary[i] = i;
            }

            append = Time(i => list.Add(i));
            set = Time(i => dictionary[i] = i);
            get = Time(i => _ = dictionary.TryGetValue(i % 1000, out _));
            concurrent = InFlight(adder); // last: its workers stay a few seconds
        }

        Measurement pyAppend = PerCall("append"), pySet = PerCall("set"), pyGet = PerCall("get");
        context.Note($"CPython: bench/python/manager.py, multiprocessing.get_context('spawn').Manager(); list.append(i), d[i] = i, d.get(i % 1000); {Calls:N0} calls per run, median of {Runs} runs; one caller. Ours: new Manager(); ListProxy<int>.Add, IDictionary<int,int> indexer set, TryGetValue.");
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"Calls per second (ours / CPython): append {1e6 / append.Value:N0} / {1e6 / pyAppend.Value:N0}, set {1e6 / set.Value:N0} / {1e6 / pySet.Value:N0}, get {1e6 / get.Value:N0} / {1e6 / pyGet.Value:N0}."));
        context.Note($"Start: Manager() until a first proxy call answered, median of {StartRuns}, each shut down before the next.");
        context.Note($"Async: {InFlightCalls} tasks each awaiting IBenchAdder.AddAsync(1) (a registered type returning Task<long>) one after another, 5,000 each, median of 5 after a warm-up; ours only (CPython's proxies have no async calls). A local manager's calls go through shared memory.");

        ResultRow Row(string what, Measurement python, Measurement ours) => new(what, python, ours)
        {
            Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≥ {GoalFactor}× CPython's calls/s (≤ {ours.Format(python.Value / GoalFactor)})"), ours.Value <= python.Value / GoalFactor),
        };

        return
        [
            Row("list append through a proxy", pyAppend, append),
            Row("dictionary set through a proxy", pySet, set),
            Row("dictionary get through a proxy", pyGet, get),
            new ResultRow("Manager() start, first call answered", pythonStart, ourStart),
            new ResultRow($"{InFlightCalls} async calls in flight (registered type, Task<long>)", null, concurrent)
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≥ {AsyncGoal:N0} calls/s"), concurrent.Value >= AsyncGoal),
            },
        ];
    }

    private const int InFlightCalls = 16;
    private const double AsyncGoal = 300_000;

    /// <summary>Calls per second with <see cref="InFlightCalls"/> tasks each awaiting one call after another.</summary>
    private static Measurement InFlight(IBenchAdder adder)
    {
        const int PerTask = 5000, AsyncRuns = 5;
        Task Burst(int perTask) => Task.WhenAll(Enumerable.Range(0, InFlightCalls).Select(async _ =>
        {
            for (int i = 0; i < perTask; i++)
            {
                await adder.AddAsync(1).ConfigureAwait(false);
            }
        }));

        if (!Burst(3000).Wait(TimeSpan.FromMinutes(2))) // long enough for the JIT to finish its work on this path
        {
            throw new TimeoutException("The async warm-up did not finish.");
        }

        var samples = new double[AsyncRuns];
        for (int r = 0; r < AsyncRuns; r++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            if (!Burst(PerTask).Wait(TimeSpan.FromMinutes(2)))
            {
                throw new TimeoutException("The async run did not finish.");
            }

            samples[r] = InFlightCalls * PerTask / System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalSeconds;
        }

        return Measurement.FromSamples(samples, Quantity.MessagesPerSecond);
    }

    private static Measurement Time(Action<int> call)
    {
        for (int i = 0; i < 2000; i++)
        {
            call(i);
        }

        var samples = new double[Runs];
        for (int r = 0; r < Runs; r++)
        {
            long start = System.Diagnostics.Stopwatch.GetTimestamp();
            for (int i = 0; i < Calls; i++)
            {
                call(i);
            }

            samples[r] = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMicroseconds / Calls;
        }

        return Measurement.FromSamples(samples, Quantity.Microseconds);
    }
}

/// <summary>A shared type with a task-returning member, for the calls-in-flight row.</summary>
public interface IBenchAdder
{
    /// <summary>Adds <paramref name="amount"/> and returns the total.</summary>
    Task<long> AddAsync(long amount);
}

/// <summary>The server-side adder.</summary>
public sealed class BenchAdder : IBenchAdder
{
    private long _total;

    /// <inheritdoc/>
    public Task<long> AddAsync(long amount) => Task.FromResult(_total += amount);
}
