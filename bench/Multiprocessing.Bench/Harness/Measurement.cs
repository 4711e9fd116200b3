using System.Globalization;

namespace Bench.Harness;

/// <summary>What a figure measures; decides how it is printed and how a ratio is worded.</summary>
public enum Quantity
{
    /// <summary>A duration in milliseconds; lower is better ("faster"/"slower").</summary>
    Milliseconds,

    /// <summary>A duration in microseconds; lower is better ("faster"/"slower").</summary>
    Microseconds,

    /// <summary>A duration in nanoseconds; lower is better ("faster"/"slower").</summary>
    Nanoseconds,

    /// <summary>A size in bytes; lower is better ("smaller"/"larger").</summary>
    Bytes,

    /// <summary>A throughput in gigabytes (10^9 bytes) per second; higher is better ("faster"/"slower").</summary>
    GigabytesPerSecond,

    /// <summary>A throughput in messages per second; higher is better ("faster"/"slower").</summary>
    MessagesPerSecond,
}

/// <summary>One figure: the median of its samples (or a single exact value), with the spread kept for the details.</summary>
public sealed record Measurement(double Value, Quantity Quantity)
{
    /// <summary>How many samples the median was taken over (0 for an exact value such as a size).</summary>
    public int Count { get; init; }

    /// <summary>The fastest sample.</summary>
    public double Min { get; init; }

    /// <summary>The slowest sample.</summary>
    public double Max { get; init; }

    /// <summary>The median of <paramref name="samples"/> with their spread.</summary>
    public static Measurement FromSamples(IReadOnlyList<double> samples, Quantity quantity)
    {
        ArgumentNullException.ThrowIfNull(samples);
        if (samples.Count == 0)
        {
            throw new ArgumentException("No samples.", nameof(samples));
        }

        double[] sorted = [.. samples];
        Array.Sort(sorted);
        int mid = sorted.Length / 2;
        double median = sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
        return new Measurement(median, quantity) { Count = sorted.Length, Min = sorted[0], Max = sorted[^1] };
    }

    /// <summary>An exact value (not a median).</summary>
    public static Measurement Exact(double value, Quantity quantity) => new(value, quantity);

    /// <summary>The value with its unit, e.g. <c>1.84 ms</c>, <c>412.3 µs</c>, <c>24,893 B</c>.</summary>
    public override string ToString() => Format(Value);

    /// <summary>Formats <paramref name="value"/> in this figure's unit.</summary>
    public string Format(double value) => Quantity switch
    {
        Quantity.Milliseconds => value.ToString(value < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " ms",
        Quantity.Microseconds => value.ToString(value < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " µs",
        Quantity.Nanoseconds => value.ToString(value < 10 ? "0.00" : "0.0", CultureInfo.InvariantCulture) + " ns",
        Quantity.Bytes => value.ToString("#,0", CultureInfo.InvariantCulture) + " B",
        Quantity.GigabytesPerSecond => value.ToString("0.00", CultureInfo.InvariantCulture) + " GB/s",
        Quantity.MessagesPerSecond => value >= 1e6
            ? (value / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + " M msg/s"
            : (value / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + " k msg/s",
        _ => value.ToString(CultureInfo.InvariantCulture),
    };

    /// <summary>The spread, for the details under a table: <c>n=20, min 1.70, max 2.31</c>.</summary>
    public string Spread => Count == 0
        ? "exact"
        : string.Create(CultureInfo.InvariantCulture, $"median of {Count}, min {Format(Min)}, max {Format(Max)}");
}
