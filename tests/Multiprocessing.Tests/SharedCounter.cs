using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Tests;

/// <summary>Plain (unsynchronized) ints in shared memory, to check what the primitives protect.</summary>
[ObjectConverter(typeof(SharedCounterConverter))]
internal sealed unsafe class SharedCounter(SharedRegion region) : IDisposable
{
    public SharedCounter(int ints = 16)
        : this(SharedMemoryBackend.Current.CreateAnonymous(ints * sizeof(int), "test-counter"))
    {
    }

    /// <summary>The <paramref name="index"/>-th int of the region (0 is <see cref="Value"/>, 1 is used by <see cref="ArriveAndSpinUntil"/>).</summary>
    public ref int this[int index] => ref ((int*)Region.Pointer)[index];

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
