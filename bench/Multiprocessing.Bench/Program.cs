using System.Globalization;
using System.Runtime.InteropServices;
using Bench.Benchmarks;
using Bench.Harness;

// Benchmarks against CPython on the same machine, in the same run. Children started by the library re-run this
// program's command line but never reach Main (the library's startup hook takes over), so this code runs only here.
Benchmark[] all = [new StartBenchmark(), new SerializerBenchmark(), new PipeBenchmark(), new PoolBenchmark(), new ManagerBenchmark(), new SyncBenchmark(), new ShmBenchmark(), new QueueBenchmark(), new DummyBenchmark()];

if (args.Contains("--help") || args.Contains("-h") || args.Contains("--list"))
{
    Console.WriteLine("usage: dotnet run -c Release --project bench/Multiprocessing.Bench -- [names...]");
    Console.WriteLine("benchmarks (all when none is named):");
    foreach (Benchmark benchmark in all)
    {
        Console.WriteLine($"  {benchmark.Name,-12} {benchmark.Title}");
    }

    return 0;
}

string[] unknown = args.Where(a => !all.Any(b => b.Name.Equals(a, StringComparison.OrdinalIgnoreCase))).ToArray();
if (unknown.Length > 0)
{
    Console.Error.WriteLine($"Unknown benchmark(s): {string.Join(", ", unknown)}. Known: {string.Join(", ", all.Select(b => b.Name))}.");
    return 2;
}

Benchmark[] selected = args.Length == 0 ? all : all.Where(b => args.Contains(b.Name, StringComparer.OrdinalIgnoreCase)).ToArray();
BenchContext context = BenchContext.Locate();

#if DEBUG
Console.WriteLine("WARNING: this is a Debug build; run with `-c Release` for meaningful figures.");
#endif
(_, string pythonVersion, string pythonError) = BenchContext.RunToEnd(context.PythonExecutable, ["--version"]);
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"Multiprocessing for .NET benchmarks — {DateTime.Now:yyyy-MM-dd HH:mm}, {Environment.ProcessorCount} cores, {OsName()}, {RuntimeInformation.FrameworkDescription}, {(pythonVersion + pythonError).Trim()}; load average before: {LoadAverage()}"));
Console.WriteLine();

foreach (Benchmark benchmark in selected)
{
    context.ClearNotes();
    var watch = System.Diagnostics.Stopwatch.StartNew();
    IReadOnlyList<ResultRow> rows = benchmark.Run(context);
    Console.WriteLine(TablePrinter.Render(benchmark.Title, rows, context.Notes));
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"({benchmark.Name} took {watch.Elapsed.TotalSeconds:0.0} s; load average after: {LoadAverage()})"));
    Console.WriteLine();
}

return 0;

// The 1-, 5- and 15-minute load averages: other work on the machine skews every figure, on both sides.
static string LoadAverage()
    => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

static string OsName()
{
    const string osRelease = "/etc/os-release";
    if (File.Exists(osRelease))
    {
        string? pretty = File.ReadLines(osRelease).FirstOrDefault(l => l.StartsWith("PRETTY_NAME=", StringComparison.Ordinal));
        if (pretty is not null)
        {
            return pretty["PRETTY_NAME=".Length..].Trim('"');
        }
    }

    return RuntimeInformation.OSDescription;
}
