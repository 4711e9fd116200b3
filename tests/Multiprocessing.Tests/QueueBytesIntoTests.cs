using D = Multiprocessing.Dummy;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary><c>GetBytesInto</c>: a byte queue's consumer copies items into its own buffer (both namespaces).</summary>
public sealed class QueueBytesIntoTests
{
    private static readonly TimeSpan Short = TimeSpan.FromMilliseconds(20);

    [Fact]
    public void Items_put_by_a_child_arrive_in_the_callers_buffer_with_their_lengths()
    {
        using var q = new mp.Queue<byte[]?>();
        var p = new mp.Process<mp.Queue<byte[]?>>(static q =>
        {
            q.Put(Pattern(1 << 20, 7));
            q.Put([]);
            q.Put(null);
            q.Put(Pattern(10, 3));
        }, q);
        p.Start();
        byte[] buffer = new byte[(1 << 20) + 5];
        Assert.Equal(1 << 20, q.GetBytesInto(buffer, Bounded.Long));
        Assert.True(buffer.AsSpan(0, 1 << 20).SequenceEqual(Pattern(1 << 20, 7)));
        Assert.Equal(0, q.GetBytesInto(buffer, Bounded.Long));
        Assert.Equal(-1, q.GetBytesInto(buffer, Bounded.Long));
        Assert.Equal(10, q.GetBytesInto(buffer.AsSpan(100), Bounded.Long));
        Assert.True(buffer.AsSpan(100, 10).SequenceEqual(Pattern(10, 3)));
        Bounded.Join(p);
        Assert.Equal(0, p.ExitCode);
        Assert.Throws<QueueEmptyException>(() => q.GetBytesInto(buffer, Short));
    }

    [Fact]
    public void Process_queue_rules() => CheckRules(
        () => new mp.Queue<byte[]>(),
        static (q, item) => q.Put(item),
        static (q, buffer) => q.GetBytesInto(buffer, Bounded.Long),
        static q => q.Get(Bounded.Long),
        () => new mp.Queue<int>(),
        static q => q.Put(5),
        static (q, buffer) => q.GetBytesInto(buffer, Bounded.Long),
        static q => q.Count);

    [Fact]
    public void Thread_queue_rules() => CheckRules(
        () => new D.Queue<byte[]>(),
        static (q, item) => q.Put(item),
        static (q, buffer) => q.GetBytesInto(buffer, Bounded.Long),
        static q => q.Get(Bounded.Long),
        () => new D.Queue<int>(),
        static q => q.Put(5),
        static (q, buffer) => q.GetBytesInto(buffer, Bounded.Long),
        static q => q.Count);

    [Fact]
    public void Thread_queue_waits_for_an_item_and_times_out_when_none_comes()
    {
        using var q = new D.Queue<byte[]?>();
        byte[] buffer = new byte[8];
        Assert.Throws<QueueEmptyException>(() => q.GetBytesInto(buffer, Short));
        var t = new Thread(() => q.Put(null));
        t.Start();
        Assert.Equal(-1, q.GetBytesInto(buffer, Bounded.Long));
        Assert.True(t.Join(Bounded.Long));
    }

    private delegate int GetInto<TQueue>(TQueue queue, Span<byte> buffer);

    private static void CheckRules<TBytes, TInts>(
        Func<TBytes> bytesQueue, Action<TBytes, byte[]> put, GetInto<TBytes> getInto, Func<TBytes, byte[]> get,
        Func<TInts> intQueue, Action<TInts> putInt, GetInto<TInts> intGetInto, Func<TInts, int> count)
        where TBytes : IDisposable
        where TInts : IDisposable
    {
        using TBytes q = bytesQueue();
        put(q, Pattern(100, 1));
        put(q, Pattern(3, 2));

        // Too long: the item is taken anyway and travels in the exception; the next one is intact.
        var tooShort = Assert.Throws<BufferTooShortException>(() => getInto(q, new byte[99]));
        Assert.Equal(Pattern(100, 1), tooShort.Payload);
        Assert.Contains("100 bytes", tooShort.Message, StringComparison.Ordinal);
        Assert.Equal(Pattern(3, 2), get(q));

        // A queue of anything else refuses, naming the type, and keeps its item.
        using TInts ints = intQueue();
        putInt(ints);
        var refused = Assert.Throws<NotSupportedException>(() => intGetInto(ints, new byte[16]));
        Assert.Contains("Int32", refused.Message, StringComparison.Ordinal);
        Assert.Equal(1, count(ints));
    }

    private static byte[] Pattern(int length, int seed)
    {
        byte[] bytes = new byte[length];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = (byte)((i * 31) + seed);
        }

        return bytes;
    }
}
