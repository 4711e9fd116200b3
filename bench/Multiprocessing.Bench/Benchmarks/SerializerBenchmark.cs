using System.Globalization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>A small record, the C# twin of the Python side's <c>Item</c> dataclass.</summary>
public sealed record Item(int Id, string Name, double Price, bool Active);

/// <summary>
/// Round trip (serialize + deserialize) of a list of 1,000 small records: <c>BinarySerializer</c> against
/// <c>pickle.dumps</c>/<c>pickle.loads</c> of the same values as a dataclass, a <c>__slots__</c> class and tuples.
/// </summary>
public sealed class SerializerBenchmark : Benchmark
{
    private const int Count = 1000;
    private const int Samples = 300;
    private const int Batch = 10;
    private const int PythonSamples = 200;
    private const int PythonBatch = 5;
    private const double GoalFactor = 5;
    private static readonly TimeSpan WarmUp = TimeSpan.FromMilliseconds(500);

    /// <inheritdoc/>
    public override string Name => "serializer";

    /// <inheritdoc/>
    public override string Title => $"serializer — round trip of a list of {Count:N0} small records (µs per round trip, median)";

    /// <summary>The workload, value for value the one <c>bench/python/serializer.py</c> builds.</summary>
    public static List<Item> Items() => Enumerable.Range(0, Count).Select(i => new Item(i, "item-" + i.ToString(CultureInfo.InvariantCulture), (i * 1.25) + 0.5, i % 3 != 0)).ToList();

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        Dictionary<string, PythonVariant> python = [];
        int protocol;
        using (JsonDocument doc = context.RunPython("serializer.py", PythonSamples.ToString(CultureInfo.InvariantCulture), PythonBatch.ToString(CultureInfo.InvariantCulture)))
        {
            protocol = doc.RootElement.GetProperty("protocol").GetInt32();
            foreach (JsonProperty variant in doc.RootElement.GetProperty("variants").EnumerateObject())
            {
                python[variant.Name] = PythonVariant.Parse(variant.Value);
            }
        }

        mp.Serialization.BinarySerializer serializer = mp.Serialization.BinarySerializer.Default;
        List<Item> items = Items();
        byte[] data = serializer.Serialize(items);
        List<Item> back = serializer.Deserialize<List<Item>>(data);
        if (!back.SequenceEqual(items))
        {
            throw new InvalidOperationException("The round trip did not reproduce the records.");
        }

        void RoundTrip() => _ = serializer.Deserialize<List<Item>>(serializer.Serialize(items));
        void SerializeOnly() => _ = serializer.Serialize(items);
        void DeserializeOnly() => _ = serializer.Deserialize<List<Item>>(data);

        Measure.WarmUp(WarmUp, RoundTrip);
        Measure.WarmUp(WarmUp / 2, SerializeOnly);
        Measure.WarmUp(WarmUp / 2, DeserializeOnly);
        double[][] timings = Measure.MicrosecondsPerCallInterleaved(Samples, Batch, RoundTrip, SerializeOnly, DeserializeOnly);
        Measurement roundTrip = Measurement.FromSamples(timings[0], Quantity.Microseconds);
        Measurement serialize = Measurement.FromSamples(timings[1], Quantity.Microseconds);
        Measurement deserialize = Measurement.FromSamples(timings[2], Quantity.Microseconds);

        const int AllocationCalls = 200;
        double allocRoundTrip = Measure.AllocatedBytesPerCall(AllocationCalls, RoundTrip);
        double allocSerialize = Measure.AllocatedBytesPerCall(AllocationCalls, SerializeOnly);
        double allocDeserialize = Measure.AllocatedBytesPerCall(AllocationCalls, DeserializeOnly);
        double allocGraph = Measure.AllocatedBytesPerCall(AllocationCalls, () => _ = Clone(items));

        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"Ours: BinarySerializer.Default.Serialize<List<Item>> to a byte[] and Deserialize<List<Item>> back, C# `record Item(int Id, string Name, double Price, bool Active)`; {Samples} batches of {Batch} after a {WarmUp.TotalMilliseconds:0} ms warm-up; round trip, Serialize and Deserialize take turns batch by batch (so do the Python variants and operations)."));
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"CPython: pickle.dumps/pickle.loads, protocol {protocol} (what multiprocessing uses), same values Item(i, f\"item-{{i}}\", i*1.25+0.5, i%3 != 0); {PythonSamples} batches of {PythonBatch} after 20 warm-up calls; cyclic GC left on, as in real use (and ours keeps the .NET GC on)."));
        context.Note("Tuples carry no type information: an anchor for the cheapest pickle can be, not an equivalent workload.");
        context.Note(string.Create(CultureInfo.InvariantCulture,
            $"Allocations are GC.GetAllocatedBytesForCurrentThread deltas over {AllocationCalls} calls; the graph floor is what building the same 1,000 records (new strings, a presized List) allocates, which any deserializer must allocate."));

        Goal GoalFor(Measurement reference) => new(
            string.Create(CultureInfo.InvariantCulture, $"≥ {GoalFactor:0}× faster"), reference.Value / roundTrip.Value >= GoalFactor);

        return
        [
            new ResultRow("round trip: pickle @dataclass vs ours record", python["dataclass"].RoundTrip, roundTrip) { Goal = GoalFor(python["dataclass"].RoundTrip) },
            new ResultRow("round trip: pickle __slots__ class vs ours record", python["slots"].RoundTrip, roundTrip) { Goal = GoalFor(python["slots"].RoundTrip) },
            new ResultRow("round trip: pickle tuples (anchor) vs ours record", python["tuple"].RoundTrip, roundTrip),
            new ResultRow("serialize only: pickle.dumps @dataclass vs Serialize", python["dataclass"].Dumps, serialize),
            new ResultRow("deserialize only: pickle.loads @dataclass vs Deserialize", python["dataclass"].Loads, deserialize),
            new ResultRow("bytes produced: @dataclass vs ours", python["dataclass"].Bytes, Measurement.Exact(data.Length, Quantity.Bytes)),
            new ResultRow("bytes produced: __slots__ class vs ours", python["slots"].Bytes, Measurement.Exact(data.Length, Quantity.Bytes)),
            new ResultRow("bytes produced: tuples (anchor) vs ours", python["tuple"].Bytes, Measurement.Exact(data.Length, Quantity.Bytes)),
            new ResultRow("allocated per round trip (ours)", null, Measurement.Exact(allocRoundTrip, Quantity.Bytes)),
            new ResultRow("allocated per Serialize (ours)", null, Measurement.Exact(allocSerialize, Quantity.Bytes)),
            new ResultRow("allocated per Deserialize (ours)", null, Measurement.Exact(allocDeserialize, Quantity.Bytes)),
            new ResultRow("graph floor: allocating the 1,000 records themselves", null, Measurement.Exact(allocGraph, Quantity.Bytes)),
        ];
    }

    private static List<Item> Clone(List<Item> items)
    {
        var copy = new List<Item>(items.Count);
        foreach (Item item in items)
        {
            copy.Add(new Item(item.Id, new string(item.Name.AsSpan()), item.Price, item.Active));
        }

        return copy;
    }

    private sealed record PythonVariant(Measurement Bytes, Measurement RoundTrip, Measurement Dumps, Measurement Loads)
    {
        public static PythonVariant Parse(JsonElement variant)
        {
            Measurement Series(string name) => Measurement.FromSamples(variant.GetProperty(name).EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.Microseconds);
            return new PythonVariant(Measurement.Exact(variant.GetProperty("bytes").GetInt32(), Quantity.Bytes), Series("roundtrip_us"), Series("dumps_us"), Series("loads_us"));
        }
    }
}
