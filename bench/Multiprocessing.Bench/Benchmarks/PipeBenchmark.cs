using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.Serialization;
using System.Text.Json;
using Bench.Harness;
using mp = Multiprocessing;

namespace Bench.Benchmarks;

/// <summary>The small object of the <c>pipe</c> benchmark: the C# twin of <c>bench/python/pipe.py</c>'s <c>Small</c> dataclass.</summary>
public sealed record Small(int I, string S, double D);

/// <summary>
/// <c>Pipe</c> between two processes: round trips of a small object and of 64 bytes against CPython's
/// <c>multiprocessing.Pipe()</c> and a raw C socketpair, one-way bandwidth with 1 MiB messages, and our allocations.
/// </summary>
public sealed class PipeBenchmark : Benchmark
{
    private const int RoundTrips = 20_000;
    private const int PythonWarmUpRoundTrips = 2_000;
    private const int SmallBytes = 64;
    private const int Message = 1 << 20;
    private const int Windows = 8;

    /// <summary>The C anchor and ours take turns in this many blocks (round trips and bandwidth windows are split evenly).</summary>
    private const int Blocks = 4;
    private const double WindowSeconds = 0.25;
    private const double AnchorGoalFactor = 1.3;
    private const double BandwidthGoalFactor = 2;
    private const double BandwidthMoonshot = 4;
    private const int AllocationRoundTrips = 2_000;
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan JoinTimeout = TimeSpan.FromSeconds(10);
    /// <summary>No pinning: the scheduler places both sides.</summary>
    private const int Free = -1;
    private const string ThreadsLabel = " (threads: passing a Connection to a child is not implemented yet)";

    private static readonly (int, string, double) TupleValue = (42, "hello", 3.5);
    private static readonly Small RecordValue = new(42, "hello", 3.5);

    /// <inheritdoc/>
    public override string Name => "pipe";

    /// <inheritdoc/>
    public override string Title => "pipe — round trips (µs, median per round trip), one-way bandwidth (GB/s, median per window), allocations";

    /// <inheritdoc/>
    public override IReadOnlyList<ResultRow> Run(BenchContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        string I(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

        // CPython first, then ours, so nothing of ours runs in the background meanwhile.
        Measurement pyTuple, pyDataclass, pyBytes, pyBandwidth, pyTuplePinned, pyDataclassPinned, pyBytesPinned;
        string startMethod;
        using (JsonDocument doc = context.RunPython("pipe.py", I($"{RoundTrips}"), I($"{PythonWarmUpRoundTrips}"), I($"{Windows}"), I($"{WindowSeconds}")))
        {
            JsonElement samples = doc.RootElement.GetProperty("samples_us");
            pyTuple = Microseconds(samples.GetProperty("tuple"));
            pyDataclass = Microseconds(samples.GetProperty("dataclass"));
            pyBytes = Microseconds(samples.GetProperty("bytes"));
            pyTuplePinned = Microseconds(samples.GetProperty("tuple_pinned"));
            pyDataclassPinned = Microseconds(samples.GetProperty("dataclass_pinned"));
            pyBytesPinned = Microseconds(samples.GetProperty("bytes_pinned"));
            pyBandwidth = Gbps(doc.RootElement.GetProperty("samples_gbps"));
            startMethod = doc.RootElement.GetProperty("start_method").GetString() ?? "?";
        }

        // Ours: each workload has its own pipe and its own peer (a child process, or a thread when a Connection cannot
        // be passed to a child yet). The C anchor and the workload of ours it judges take turns block by block: this
        // VM's round-trip times change band from one run to the next (see RESULTS.md), so both sides get the same mix.
        // The round trips run twice: placed by the scheduler ("free"), and with both sides pinned to one CPU (on this VM a
        // wake-up across CPUs costs tens of µs when the other CPU is idle, so placement alone can change a figure 5×).
        string anchor = context.CProgram("socketpair_pingpong");
        int cpu = Affinity.LowestCpu();
        var fallbacks = new List<string>();
        (Measurement tuple, double tupleAlloc) = ObjectRoundTrips(TupleValue, fallbacks, Free);
        (Measurement record, double recordAlloc) = ObjectRoundTrips(RecordValue, fallbacks, Free);
        var cRoundTrips = new List<double>();
        var cThreadRoundTrips = new List<double>();
        var cPinnedRoundTrips = new List<double>();
        void AnchorRoundTrips(string mode, List<double> into, int where)
        {
            using JsonDocument doc = BenchContext.RunProgram(anchor, mode, I($"{RoundTrips / Blocks}"), I($"{PythonWarmUpRoundTrips / Blocks}"), I($"{SmallBytes}"), I($"{where}"));
            into.AddRange(doc.RootElement.GetProperty("samples_us").EnumerateArray().Select(e => e.GetDouble()));
        }

        (Measurement bytes, double bytesAlloc) = BytesRoundTrips(fallbacks, Free, () =>
        {
            AnchorRoundTrips("pingpong", cRoundTrips, Free);
            AnchorRoundTrips("pingpong-threads", cThreadRoundTrips, Free);
        });
        (Measurement tuplePinned, _) = ObjectRoundTrips(TupleValue, fallbacks, cpu);
        (Measurement recordPinned, _) = ObjectRoundTrips(RecordValue, fallbacks, cpu);
        (Measurement bytesPinned, _) = BytesRoundTrips(fallbacks, cpu, () => AnchorRoundTrips("pingpong", cPinnedRoundTrips, cpu));
        Measurement cPingPong = Measurement.FromSamples(cRoundTrips, Quantity.Microseconds);
        Measurement cThreadPingPong = Measurement.FromSamples(cThreadRoundTrips, Quantity.Microseconds);
        Measurement cPinnedPingPong = Measurement.FromSamples(cPinnedRoundTrips, Quantity.Microseconds);
        var cRates = new List<double>();
        (Measurement bandwidth, double receiveAlloc) = Bandwidth(fallbacks, () =>
        {
            using JsonDocument doc = BenchContext.RunProgram(anchor, "bandwidth", I($"{Windows / Blocks}"), I($"{WindowSeconds}"), I($"{Message}"));
            cRates.AddRange(doc.RootElement.GetProperty("samples_gbps").EnumerateArray().Select(e => e.GetDouble()));
        });
        Measurement cBandwidth = Measurement.FromSamples(cRates, Quantity.GigabytesPerSecond);
        static void NewTuple() => _ = (42, new string('h', 5), 3.5);
        static void NewRecord() => _ = new Small(42, new string('h', 5), 3.5);
        Measure.WarmUp(TimeSpan.FromMilliseconds(50), NewTuple);
        Measure.WarmUp(TimeSpan.FromMilliseconds(50), NewRecord);
        double tupleFloor = Measure.AllocatedBytesPerCall(AllocationRoundTrips, NewTuple);
        double recordFloor = Measure.AllocatedBytesPerCall(AllocationRoundTrips, NewRecord);

        bool threads = fallbacks.Count > 0;
        string peer = threads ? ThreadsLabel : "";
        double anchorLimit = cPingPong.Value * AnchorGoalFactor;
        double pinnedAnchorLimit = cPinnedPingPong.Value * AnchorGoalFactor;
        double bandwidthLimit = pyBandwidth.Value * BandwidthGoalFactor;

        context.Note(I($"Round trips: {RoundTrips:N0} per workload, each timed on its own (Stopwatch / perf_counter_ns / CLOCK_MONOTONIC), median reported. Warm-up: {PythonWarmUpRoundTrips:N0} round trips for CPython and C, {WarmUp.TotalSeconds:0} s of round trips for ours (tiered JIT; {WarmUp.TotalSeconds / 4:0.00} s for the pinned runs, which come after the free ones). Each workload has its own pipe and its own echoing peer."));
        context.Note(I($"Pinned rows: both sides pinned to CPU {cpu} (sched_setaffinity in each process or thread: os.sched_setaffinity for CPython, the C anchor's cpu argument, P/Invoke for ours), so every round trip is two context switches on one CPU. Unpinned rows leave placement to the scheduler; on this VM a wake-up on the other, idle CPU costs tens of µs, so those figures can move several-fold between runs for every side alike (see RESULTS.md)."));
        context.Note(I($"CPython: multiprocessing.Pipe() with a {startMethod} Process child; objects: send + recv, the child echoes conn.send(conn.recv()); bytes: send_bytes + recv_bytes, the child echoes send_bytes(recv_bytes()). Same values: (42, \"hello\", 3.5) as a tuple and as @dataclass Small(i, s, d)."));
        context.Note("Ours: Pipe.Create(); objects: Send<T> + Recv<T> with T = (int, string, double) or record Small(int I, string S, double D), the peer echoes Send(Recv<object>()); bytes: SendBytes + RecvBytesInto a reused buffer, the peer echoes SendBytes(RecvBytesInto(its reused buffer)).");
        context.Note(threads
            ? "Ours ran between two THREADS of this process: starting a child with a Connection argument threw " + fallbacks[0] + " The code tries a child process first and uses it as soon as Start() accepts a Connection."
            : "Ours ran between this process and a child process (Process<Connection>), like CPython.");
        context.Note(I($"C anchor: bench/c/socketpair_pingpong.c (gcc -O2), AF_UNIX SOCK_STREAM socketpair, fork; ping-pong: write {SmallBytes} B + read {SmallBytes} B, no framing, the echo in a forked child (the goal's anchor) or on a second thread (the like-for-like anchor while ours runs on threads); bandwidth: the child reads 1 MiB messages into one buffer. The anchors and ours take turns in {Blocks} blocks ({RoundTrips / Blocks:N0} round trips or {Windows / Blocks} windows each, the anchor's after a {PythonWarmUpRoundTrips / Blocks:N0}-round-trip or one calibration window warm-up of its own)."));
        context.Note(I($"Bandwidth: {Windows} windows of about {WindowSeconds} s after a half-length warm-up window (ours also sends an untimed eighth-length window after each of the anchor's turns); the sender sends 1 MiB messages until the window's time is up, then a 1-byte marker, and the window ends when the receiver's answer arrives (so everything sent was received). CPython: send_bytes / recv_bytes (a new bytes object per message); ours: SendBytes / RecvBytesInto a reused 1 MiB buffer. GB/s = 10^9 bytes per second."));
        context.Note(I($"Allocations: GC.GetAllocatedBytesForCurrentThread deltas over {AllocationRoundTrips:N0} round trips on the thread that sends and receives (after the timed ones); the receiver's figure for 1 MiB messages is its own thread's delta over every message of the timed windows. The floors are what allocating the received value itself costs (a new \"hello\" string, and the record)."));

        return
        [
            new ResultRow("object round trip: CPython tuple (42, \"hello\", 3.5) vs ours (int, string, double)" + peer, pyTuple, tuple),
            new ResultRow("object round trip: CPython @dataclass vs ours record Small(int, string, double)" + peer, pyDataclass, record),
            new ResultRow(I($"{SmallBytes} B round trip: CPython send_bytes/recv_bytes vs ours SendBytes/RecvBytesInto") + peer, pyBytes, bytes),
            new ResultRow(I($"{SmallBytes} B round trip: raw C socketpair ping-pong, fork (in the CPython column) vs ours") + peer, cPingPong, bytes)
            {
                Goal = new Goal(I($"≤ {AnchorGoalFactor}× C (≤ {bytes.Format(anchorLimit)}), placement-dependent"), bytes.Value <= anchorLimit),
            },
            new ResultRow(I($"{SmallBytes} B round trip: raw C socketpair ping-pong, two threads (in the CPython column) vs ours") + peer, cThreadPingPong, bytes),
            new ResultRow(I($"pinned to CPU {cpu}: object round trip, CPython tuple vs ours (int, string, double)") + peer, pyTuplePinned, tuplePinned),
            new ResultRow(I($"pinned to CPU {cpu}: object round trip, CPython @dataclass vs ours record Small") + peer, pyDataclassPinned, recordPinned),
            new ResultRow(I($"pinned to CPU {cpu}: {SmallBytes} B round trip, CPython send_bytes/recv_bytes vs ours SendBytes/RecvBytesInto") + peer, pyBytesPinned, bytesPinned),
            new ResultRow(I($"pinned to CPU {cpu}: {SmallBytes} B round trip, raw C socketpair ping-pong, fork (in the CPython column) vs ours") + peer, cPinnedPingPong, bytesPinned)
            {
                Goal = new Goal(I($"≤ {AnchorGoalFactor}× C (≤ {bytesPinned.Format(pinnedAnchorLimit)})"), bytesPinned.Value <= pinnedAnchorLimit),
            },
            new ResultRow("1 MiB one way: CPython send_bytes/recv_bytes vs ours SendBytes/RecvBytesInto" + peer, pyBandwidth, bandwidth)
            {
                Goal = new Goal(I($"≥ {BandwidthGoalFactor}× CPython (≥ {bandwidth.Format(bandwidthLimit)})"), bandwidth.Value >= bandwidthLimit),
            },
            new ResultRow("1 MiB one way: raw C socketpair, fork (in the CPython column) vs ours" + peer, cBandwidth, bandwidth)
            {
                Goal = new Goal(I($"moonshot ≥ {BandwidthMoonshot} GB/s"), bandwidth.Value >= BandwidthMoonshot),
            },
            new ResultRow("allocated per object round trip (ours): (int, string, double)", null, Measurement.Exact(tupleAlloc, Quantity.Bytes))
            {
                Goal = new Goal(I($"near zero: ≤ floor + 32 B (≤ {tupleFloor + 32:0} B)"), tupleAlloc <= tupleFloor + 32),
            },
            new ResultRow("allocated per object round trip (ours): record Small", null, Measurement.Exact(recordAlloc, Quantity.Bytes))
            {
                Goal = new Goal(I($"near zero: ≤ floor + 32 B (≤ {recordFloor + 32:0} B)"), recordAlloc <= recordFloor + 32),
            },
            new ResultRow("floor: allocating the received value, (int, string, double)", null, Measurement.Exact(tupleFloor, Quantity.Bytes)),
            new ResultRow("floor: allocating the received value, record Small", null, Measurement.Exact(recordFloor, Quantity.Bytes)),
            new ResultRow(I($"allocated per {SmallBytes} B round trip (ours): SendBytes + RecvBytesInto"), null, Measurement.Exact(bytesAlloc, Quantity.Bytes))
            {
                Goal = new Goal("0 B", bytesAlloc < 1),
            },
            new ResultRow("allocated per 1 MiB message received (ours): RecvBytesInto, receiver's thread", null, Measurement.Exact(receiveAlloc, Quantity.Bytes))
            {
                Goal = new Goal("0 B", receiveAlloc < 1),
            },
        ];
    }

    private static Measurement Microseconds(JsonElement samples)
        => Measurement.FromSamples(samples.EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.Microseconds);

    private static Measurement Gbps(JsonElement samples)
        => Measurement.FromSamples(samples.EnumerateArray().Select(e => e.GetDouble()).ToList(), Quantity.GigabytesPerSecond);

    /// <summary>Round trips of <paramref name="value"/>: Send + Recv here, the peer echoes; median µs and bytes allocated per round trip.</summary>
    /// <remarks><paramref name="cpu"/>: both sides pinned to this CPU, or <see cref="Free"/>.</remarks>
    private static (Measurement Time, double Allocated) ObjectRoundTrips<T>(T value, List<string> fallbacks, int cpu)
    {
        using var peer = Peer.Start(EchoObjects, fallbacks, cpu);
        mp.Connection connection = peer.Connection;
        T back = default!;
        void RoundTrip()
        {
            connection.Send(value);
            back = connection.Recv<T>();
        }

        Measure.WarmUp(cpu == Free ? WarmUp : WarmUp / 4, RoundTrip); // the pinned runs follow the free ones: already compiled
        if (!EqualityComparer<T>.Default.Equals(back, value))
        {
            throw new InvalidOperationException($"The echo changed the value: sent {value}, got {back}.");
        }

        double[] samples = TimeEach(RoundTrips, RoundTrip);
        double allocated = Measure.AllocatedBytesPerCall(AllocationRoundTrips, RoundTrip);
        connection.Send<object?>(null);
        peer.Join();
        return (Measurement.FromSamples(samples, Quantity.Microseconds), allocated);
    }

    /// <summary>Round trips of 64 bytes: SendBytes + RecvBytesInto a reused buffer here, the peer echoes.</summary>
    /// <remarks><paramref name="anchorBlock"/> runs before each of the <see cref="Blocks"/> timed blocks (the C anchor's turn).</remarks>
    private static (Measurement Time, double Allocated) BytesRoundTrips(List<string> fallbacks, int cpu, Action anchorBlock)
    {
        using var peer = Peer.Start(EchoBytes, fallbacks, cpu);
        mp.Connection connection = peer.Connection;
        byte[] payload = Enumerable.Range(0, SmallBytes).Select(i => (byte)i).ToArray();
        byte[] buffer = new byte[SmallBytes];
        void RoundTrip()
        {
            connection.SendBytes(payload);
            _ = connection.RecvBytesInto(buffer);
        }

        Measure.WarmUp(cpu == Free ? WarmUp : WarmUp / 4, RoundTrip); // the pinned runs follow the free ones: already compiled
        if (!buffer.AsSpan().SequenceEqual(payload))
        {
            throw new InvalidOperationException("The echo changed the bytes.");
        }

        var samples = new List<double>(RoundTrips);
        for (int block = 0; block < Blocks; block++)
        {
            anchorBlock();
            Measure.WarmUp(TimeSpan.FromMilliseconds(20), RoundTrip);
            samples.AddRange(TimeEach(RoundTrips / Blocks, RoundTrip));
        }

        double allocated = Measure.AllocatedBytesPerCall(AllocationRoundTrips, RoundTrip);
        connection.SendBytes([]);
        peer.Join();
        return (Measurement.FromSamples(samples, Quantity.Microseconds), allocated);
    }

    /// <summary>One-way 1 MiB messages in windows; GB/s per window and what the receiver allocated per message.</summary>
    /// <remarks><paramref name="anchorBlock"/> runs before each of the <see cref="Blocks"/> blocks of windows (the C anchor's turn).</remarks>
    private static (Measurement Rate, double ReceiverAllocatedPerMessage) Bandwidth(List<string> fallbacks, Action anchorBlock)
    {
        using var peer = Peer.Start(Sink, fallbacks, Free);
        mp.Connection connection = peer.Connection;
        byte[] payload = new byte[Message];
        payload.AsSpan().Fill((byte)'x');
        byte[] answer = new byte[16];
        byte[] marker = [(byte)'m'];

        // Each answer carries the receiver thread's allocated-bytes counter.
        (double Gbps, int Messages, long ReceiverAllocated) Window(TimeSpan duration)
        {
            int sent = 0;
            long start = Stopwatch.GetTimestamp();
            do
            {
                connection.SendBytes(payload);
                sent++;
            }
            while (Stopwatch.GetElapsedTime(start) < duration);
            connection.SendBytes(marker);
            _ = connection.RecvBytesInto(answer);
            double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
            return ((double)sent * Message / seconds / 1e9, sent, BinaryPrimitives.ReadInt64LittleEndian(answer));
        }

        _ = Window(TimeSpan.FromSeconds(WindowSeconds / 2));
        var rates = new List<double>(Windows);
        long messages = 0;
        long receiverAllocated = 0;
        for (int block = 0; block < Blocks; block++)
        {
            anchorBlock();
            (_, _, long allocatedBefore) = Window(TimeSpan.FromSeconds(WindowSeconds / 8)); // back in the cache after the anchor's turn
            long allocatedAfter = allocatedBefore;
            for (int i = 0; i < Windows / Blocks; i++)
            {
                (double rate, int sent, allocatedAfter) = Window(TimeSpan.FromSeconds(WindowSeconds));
                rates.Add(rate);
                messages += sent;
            }

            receiverAllocated += allocatedAfter - allocatedBefore;
        }

        connection.SendBytes([]);
        peer.Join();
        return (Measurement.FromSamples(rates, Quantity.GigabytesPerSecond), receiverAllocated / (double)messages);
    }

    /// <summary>Microseconds for each of <paramref name="count"/> calls, timed one by one.</summary>
    private static double[] TimeEach(int count, Action call)
    {
        var samples = new double[count];
        for (int i = 0; i < count; i++)
        {
            long start = Stopwatch.GetTimestamp();
            call();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMicroseconds;
        }

        return samples;
    }

    // The peers' bodies: static, so a child's target carries nothing but the connection and the CPU to pin to.

    private static void EchoObjects(mp.Connection connection, int cpu)
    {
        Affinity.Pin(cpu);
        while (connection.Recv<object?>() is { } value)
        {
            connection.Send(value);
        }
    }

    private static void EchoBytes(mp.Connection connection, int cpu)
    {
        Affinity.Pin(cpu);
        byte[] buffer = new byte[SmallBytes];
        int length;
        while ((length = connection.RecvBytesInto(buffer)) > 0)
        {
            connection.SendBytes(buffer.AsSpan(0, length));
        }
    }

    /// <summary>Receives 1 MiB messages into one buffer; answers each 1-byte marker with its thread's allocated-bytes counter; stops at an empty message.</summary>
    private static void Sink(mp.Connection connection, int cpu)
    {
        Affinity.Pin(cpu);
        byte[] buffer = new byte[Message];
        byte[] answer = new byte[8];
        int length;
        while ((length = connection.RecvBytesInto(buffer)) > 0)
        {
            if (length == 1)
            {
                BinaryPrimitives.WriteInt64LittleEndian(answer, GC.GetAllocatedBytesForCurrentThread());
                connection.SendBytes(answer);
            }
        }
    }

    /// <summary>The other end of a pipe: a child process when a Connection can be passed to one, otherwise a thread.</summary>
    private sealed class Peer : IDisposable
    {
        private readonly mp.Process? _process;
        private readonly Thread? _thread;
        private readonly mp.Connection _theirs;
        private readonly byte[]? _mask;

        private Peer(mp.Connection mine, mp.Connection theirs, mp.Process? process, Thread? thread, int cpu)
        {
            Connection = mine;
            _theirs = theirs;
            _process = process;
            _thread = thread;
            if (cpu >= 0)
            {
                _mask = Affinity.Current();
                Affinity.Pin(cpu); // this thread, until Dispose
            }
        }

        /// <summary>This process's end.</summary>
        public mp.Connection Connection { get; }

        /// <summary>Starts <paramref name="body"/> on the other end: in a child process, or (when Start() refuses a Connection) on a thread; the refusal goes to <paramref name="fallbacks"/>.</summary>
        public static Peer Start(Action<mp.Connection, int> body, List<string> fallbacks, int cpu)
        {
            (mp.Connection mine, mp.Connection theirs) = mp.Pipe.Create();
            mp.Process? process = null;
            try
            {
                process = new mp.Process<mp.Connection, int>(body, theirs, cpu, name: "pipe-peer");
                process.Start();
                theirs.Dispose(); // the child has its own copy; as in CPython, the parent closes its copy of the child's end
                return new Peer(mine, theirs, process, null, cpu);
            }
            catch (SerializationException ex)
            {
                process?.Dispose();
                fallbacks.Add($"{ex.GetType().Name}: {ex.Message.Split('\n')[0].Trim()}");
                var thread = new Thread(() => body(theirs, cpu)) { IsBackground = true, Name = "pipe-peer" };
                thread.Start();
                return new Peer(mine, theirs, null, thread, cpu);
            }
        }

        /// <summary>Waits for the peer to finish (after it was told to stop).</summary>
        public void Join()
        {
            if (_process is not null)
            {
                if (!_process.Join(JoinTimeout) || _process.ExitCode != 0)
                {
                    throw new InvalidOperationException($"The peer process did not end cleanly (exit code {_process.ExitCode?.ToString(CultureInfo.InvariantCulture) ?? "none"}): {_process.Error}");
                }
            }
            else if (_thread is not null && !_thread.Join(JoinTimeout))
            {
                throw new InvalidOperationException("The peer thread did not end.");
            }
        }

        public void Dispose()
        {
            if (_mask is not null)
            {
                Affinity.Restore(_mask);
            }

            Connection.Dispose();
            _theirs.Dispose();
            _process?.Dispose();
        }
    }
}
