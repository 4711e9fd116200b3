using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Tests;

/// <summary>A plain (unsynchronized) int in shared memory, to check what locks protect.</summary>
[ObjectConverter(typeof(SharedCounterConverter))]
internal sealed unsafe class SharedCounter(SharedRegion region) : IDisposable
{
    public SharedCounter()
        : this(SharedMemoryBackend.Current.CreateAnonymous(64, "test-counter"))
    {
    }

    public SharedRegion Region { get; } = region;

    public int Value
    {
        get => Volatile.Read(ref *(int*)Region.Pointer);
        set => Volatile.Write(ref *(int*)Region.Pointer, value);
    }

    /// <summary>Read, pause, write: loses updates unless the caller excludes others.</summary>
    public void IncrementUnsafely()
    {
        int* p = (int*)Region.Pointer;
        int value = Volatile.Read(ref *p);
        Thread.SpinWait(4);
        Volatile.Write(ref *p, value + 1);
    }

    /// <summary>Counts the caller in and spins until <paramref name="parties"/> have arrived, so the work that follows overlaps.</summary>
    public void ArriveAndSpinUntil(int parties)
    {
        int* arrived = (int*)Region.Pointer + 1;
        Interlocked.Increment(ref *arrived);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        SpinWait spinner = default;
        while (Volatile.Read(ref *arrived) < parties && clock.Elapsed < Bounded.Long)
        {
            spinner.SpinOnce();
        }
    }

    public void Dispose() => Region.Dispose();
}

internal sealed class SharedCounterConverter : ObjectConverter<SharedCounter>
{
    public override void Write(ObjectWriter writer, SharedCounter value) => writer.WriteRegion(value.Region, typeof(SharedCounter));

    public override SharedCounter Read(ref ObjectReader reader) => new(reader.ReadRegion());
}
