using System.Globalization;

namespace Bench.Harness;

/// <summary>A goal from the issue that a row is judged against, e.g. <c>≤ 2.2 ms</c>.</summary>
/// <param name="Target">The goal as stated, e.g. <c>≤ 1.3× hello-world (≤ 61.2 ms)</c>.</param>
/// <param name="Met">Whether the measured figure meets it.</param>
public sealed record Goal(string Target, bool Met)
{
    /// <inheritdoc/>
    public override string ToString() => Target + (Met ? " — met" : " — NOT met");
}

/// <summary>One line of a results table: the same workload through CPython and through this library.</summary>
/// <param name="Workload">What was measured, and under which variant on each side.</param>
/// <param name="CPython">CPython's figure, or null when the row has none (an anchor of ours only).</param>
/// <param name="Ours">Our figure, or null when the row has none (an anchor of CPython only).</param>
public sealed record ResultRow(string Workload, Measurement? CPython, Measurement? Ours)
{
    /// <summary>The goal this row is judged against, if the issue gives one.</summary>
    public Goal? Goal { get; init; }

    /// <summary>Ours against CPython: <c>3.2× faster</c>, <c>1.4× slower</c>, <c>2.0× smaller</c>; empty when a side is missing.</summary>
    public string Ratio => CPython is null || Ours is null ? "" : Describe(CPython.Value, Ours.Value, Ours.Quantity);

    /// <summary>Words <paramref name="ours"/> against <paramref name="reference"/> (lower is better, except for a throughput).</summary>
    public static string Describe(double reference, double ours, Quantity quantity)
    {
        (string better, string worse) = quantity == Quantity.Bytes ? ("smaller", "larger") : ("faster", "slower");
        if (ours <= 0 || reference <= 0)
        {
            return "n/a";
        }

        double factor = quantity is Quantity.GigabytesPerSecond or Quantity.MessagesPerSecond ? ours / reference : reference / ours;
        return factor >= 1
            ? Times(factor) + " " + better
            : Times(1 / factor) + " " + worse;
    }

    /// <summary><c>1.23×</c> below 10, <c>12.3×</c> above.</summary>
    public static string Times(double factor) => factor.ToString(factor < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + "×";
}
