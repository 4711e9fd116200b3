using System.Diagnostics;

namespace Bench.Harness;

/// <summary>Plain <see cref="Stopwatch"/> sampling: warm up, then time each iteration (or batch) and keep the samples.</summary>
public static class Measure
{
    /// <summary>Times <paramref name="iteration"/> <paramref name="count"/> times, in milliseconds each; <paramref name="between"/> runs untimed before each.</summary>
    public static double[] Milliseconds(int count, Action iteration, Action? between = null)
    {
        ArgumentNullException.ThrowIfNull(iteration);
        var samples = new double[count];
        for (int i = 0; i < count; i++)
        {
            between?.Invoke();
            long start = Stopwatch.GetTimestamp();
            iteration();
            samples[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }

        return samples;
    }

    /// <summary>
    /// Times <paramref name="samples"/> batches of <paramref name="batch"/> calls each, after <paramref name="warmup"/>
    /// untimed calls, and returns microseconds per call for each batch.
    /// </summary>
    public static double[] MicrosecondsPerCall(int samples, int batch, int warmup, Action call)
    {
        ArgumentNullException.ThrowIfNull(call);
        for (int i = 0; i < warmup; i++)
        {
            call();
        }

        var result = new double[samples];
        for (int s = 0; s < samples; s++)
        {
            long start = Stopwatch.GetTimestamp();
            for (int i = 0; i < batch; i++)
            {
                call();
            }

            result[s] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / batch;
        }

        return result;
    }

    /// <summary>
    /// Like <see cref="MicrosecondsPerCall"/> for several calls at once, taking turns batch by batch so that a burst of
    /// other work on the machine spreads over all of them; returns one sample array per call, in order.
    /// </summary>
    public static double[][] MicrosecondsPerCallInterleaved(int samples, int batch, params Action[] calls)
    {
        ArgumentNullException.ThrowIfNull(calls);
        double[][] result = calls.Select(_ => new double[samples]).ToArray();
        for (int s = 0; s < samples; s++)
        {
            for (int c = 0; c < calls.Length; c++)
            {
                Action call = calls[c];
                long start = Stopwatch.GetTimestamp();
                for (int i = 0; i < batch; i++)
                {
                    call();
                }

                result[c][s] = Stopwatch.GetElapsedTime(start).TotalMicroseconds / batch;
            }
        }

        return result;
    }

    /// <summary>Calls <paramref name="call"/> repeatedly for at least <paramref name="duration"/>, so tiered JIT has promoted the hot code.</summary>
    public static void WarmUp(TimeSpan duration, Action call)
    {
        ArgumentNullException.ThrowIfNull(call);
        long start = Stopwatch.GetTimestamp();
        do
        {
            call();
        }
        while (Stopwatch.GetElapsedTime(start) < duration);
    }

    /// <summary>Bytes allocated on this thread per call of <paramref name="call"/>, averaged over <paramref name="calls"/> calls.</summary>
    public static double AllocatedBytesPerCall(int calls, Action call)
    {
        ArgumentNullException.ThrowIfNull(call);
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < calls; i++)
        {
            call();
        }

        return (GC.GetAllocatedBytesForCurrentThread() - before) / (double)calls;
    }
}
