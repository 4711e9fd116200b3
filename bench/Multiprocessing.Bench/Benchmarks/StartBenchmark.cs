using System.Globalization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>
/// Process start + join of an empty target: CPython's spawn, forkserver and fork against ours cold and with the spare
/// child, plus the runtime start-up floors (<c>dotnet HelloWorld.dll</c>, <c>python3 -c pass</c>).
/// </summary>
public sealed class StartBenchmark : Benchmark
{
    private const int Runs = 20;
    private const double ColdGoalFactor = 1.3;
    private const double SpareGoalMs = 2.2;
    private static readonly TimeSpan SpareGap = TimeSpan.FromMilliseconds(150);
    private static readonly TimeSpan LongSpareGap = TimeSpan.FromMilliseconds(1000);
    private const int LongGapRuns = 10;

    /// <inheritdoc/>
    public override string Name => "start";

    /// <inheritdoc/>
    public override string Title => $"start — Process.Start() + Join() of an empty target (median of {Runs})";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);

        // CPython first, so nothing of ours (a spare child refilling) runs in the background meanwhile.
        Dictionary<string, Measurement> python = PythonStarts(context, [], "spawn,forkserver,fork");
        Measurement spawnNoSite = PythonStarts(context, ["-S"], "spawn")["spawn"];

        // Runtime floors, launched the same way (System.Diagnostics.Process, output read to the end).
        string helloWorld = HelloWorldDll(context);
        _ = BenchContext.TimeRun("dotnet", [helloWorld]);
        Measurement hello = Measurement.FromSamples(Measure.Milliseconds(Runs, () => BenchContext.TimeRun("dotnet", [helloWorld])), Quantity.Milliseconds);
        _ = BenchContext.TimeRun(context.PythonExecutable, ["-c", "pass"]);
        Measurement pythonPass = Measurement.FromSamples(Measure.Milliseconds(Runs, () => BenchContext.TimeRun(context.PythonExecutable, ["-c", "pass"])), Quantity.Milliseconds);

        // Ours cold: every Start() launches a new runtime. One warm-up start excludes the parent's own JIT.
        bool keepSpare = mp.Process.KeepSpareChild;
        Measurement cold;
        Measurement spare;
        Measurement spareLongGap;
        try
        {
            mp.Process.KeepSpareChild = false;
            _ = TimeStartJoin();
            cold = TimeStartJoins(Runs, TimeSpan.Zero);

            // Ours with the spare child: the first start is cold and launches the spare; the next one is the warm-up.
            mp.Process.KeepSpareChild = true;
            _ = TimeStartJoin();
            Thread.Sleep(SpareGap);
            _ = TimeStartJoin();
            spare = TimeStartJoins(Runs, SpareGap);
            spareLongGap = TimeStartJoins(LongGapRuns, LongSpareGap);
        }
        finally
        {
            mp.Process.KeepSpareChild = keepSpare;
            Thread.Sleep(300); // let the last spare refill finish before the next benchmark
        }

        double coldLimit = hello.Value * ColdGoalFactor;
        context.Note($"Only Start()+Join() (start()+join() in CPython) is timed; construction is not. Each figure follows one untimed warm-up start (for forkserver that also starts the server; for ours it excludes the parent's JIT); CPython's three methods take turns run by run.");
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"Spare child: there is no public readiness API, so each iteration first sleeps {SpareGap.TotalMilliseconds:0} ms (untimed) while the spare refills in the background. The {LongSpareGap.TotalMilliseconds:0} ms row (median of {LongGapRuns}) shows whether {SpareGap.TotalMilliseconds:0} ms was enough."));
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"Cold goal: ≤ {ColdGoalFactor}× hello-world; ours cold is {cold.Value / hello.Value:0.00}× the hello-world start ({cold} vs {hello})."));
        context.Note($"Runtime floors are timed from launch until exit with System.Diagnostics.Process, output read to the end. Python is {context.PythonExecutable} (the sys.executable of `{context.PythonCommand}`).");
        context.Note("`python -S` skips site-packages: an anchor for machines whose site-packages .pth files import modules at every interpreter start (spawn children pay it too); -S is passed on to spawn children.");

        return
        [
            new ResultRow("runtime floor: `python3 -c pass` vs `dotnet HelloWorld.dll`", pythonPass, hello),
            new ResultRow("cold: CPython spawn vs ours, KeepSpareChild = false", python["spawn"], cold)
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≤ {ColdGoalFactor}× hello-world (≤ {cold.Format(coldLimit)})"), cold.Value <= coldLimit),
            },
            new ResultRow("cold: CPython spawn under `python -S` (no site-packages) vs ours, KeepSpareChild = false", spawnNoSite, cold),
            new ResultRow(string.Create(CultureInfo.InvariantCulture, $"warm: CPython forkserver vs ours, spare child ({SpareGap.TotalMilliseconds:0} ms gap)"), python["forkserver"], spare)
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≤ {SpareGoalMs} ms"), spare.Value <= SpareGoalMs),
            },
            new ResultRow(string.Create(CultureInfo.InvariantCulture, $"warm: CPython forkserver vs ours, spare child ({LongSpareGap.TotalMilliseconds:0} ms gap)"), python["forkserver"], spareLongGap)
            {
                Goal = new Goal(string.Create(CultureInfo.InvariantCulture, $"≤ {SpareGoalMs} ms"), spareLongGap.Value <= SpareGoalMs),
            },
            new ResultRow(string.Create(CultureInfo.InvariantCulture, $"fork: CPython fork vs ours, spare child ({SpareGap.TotalMilliseconds:0} ms gap)"), python["fork"], spare),
        ];
    }

    /// <summary>Runs <c>start.py</c> for <paramref name="methods"/>; <c>-S</c> in <paramref name="options"/> reaches spawn children too.</summary>
    private static Dictionary<string, Measurement> PythonStarts(BenchContext context, string[] options, string methods)
    {
        Dictionary<string, Measurement> result = [];
        using JsonDocument doc = context.RunPython(options, "start.py", Runs.ToString(CultureInfo.InvariantCulture), methods);
        foreach (JsonProperty method in doc.RootElement.GetProperty("samples_ms").EnumerateObject())
        {
            result[method.Name] = Measurement.FromSamples(method.Value.EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.Milliseconds);
        }

        return result;
    }

    private static Measurement TimeStartJoins(int runs, TimeSpan gap)
    {
        var samples = new double[runs];
        for (int i = 0; i < runs; i++)
        {
            if (gap > TimeSpan.Zero)
            {
                Thread.Sleep(gap);
            }

            samples[i] = TimeStartJoin();
        }

        return Measurement.FromSamples(samples, Quantity.Milliseconds);
    }

    /// <summary>Milliseconds for Start() + Join() of an empty target; construction and disposal are not timed.</summary>
    private static double TimeStartJoin()
    {
        using var process = new mp.Process(Empty);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        process.Start();
        process.Join();
        double elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"The child exited with {process.ExitCode}: {process.Error}");
        }

        return elapsed;
    }

    private static void Empty()
    {
    }

    /// <summary>The hello-world app's path, building it first (Release) when it is missing or older than its source.</summary>
    private static string HelloWorldDll(BenchContext context)
    {
        string project = Path.Combine(context.BenchDirectory, "HelloWorld");
        string dll = Path.Combine(project, "bin", "Release", "net10.0", "HelloWorld.dll");
        DateTime source = Directory.EnumerateFiles(project, "*.cs*", SearchOption.TopDirectoryOnly).Max(File.GetLastWriteTimeUtc);
        if (!File.Exists(dll) || File.GetLastWriteTimeUtc(dll) < source)
        {
            Console.Error.WriteLine($"Building {project} (Release)…");
            (int exitCode, string output, string error) = BenchContext.RunToEnd("dotnet", ["build", "-c", "Release", "-nologo", "-v", "q", project]);
            if (exitCode != 0 || !File.Exists(dll))
            {
                throw new InvalidOperationException($"Building the hello-world app failed:{Environment.NewLine}{output}{error}");
            }
        }

        return dll;
    }
}
