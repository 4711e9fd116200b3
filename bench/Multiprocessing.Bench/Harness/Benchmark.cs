namespace Bench.Harness;

/// <summary>
/// One benchmark: runs the same workload through CPython (a script in <c>bench/python/</c>) and through this library,
/// in the same run, and returns one row per comparison. Register new ones in <c>Program.cs</c>.
/// </summary>
public abstract class Benchmark
{
    /// <summary>The name used on the command line, e.g. <c>start</c>.</summary>
    public abstract string Name { get; }

    /// <summary>A one-line description, printed as the table's heading.</summary>
    public abstract string Title { get; }

    /// <summary>Measures both sides and returns the rows; notes on method go to <see cref="BenchContext.Note"/>.</summary>
    public abstract IReadOnlyList<ResultRow> Run(BenchContext context);
}
