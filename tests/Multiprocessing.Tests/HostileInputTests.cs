using System.Runtime.CompilerServices;
using System.Runtime.Serialization;
using Multiprocessing.Serialization;

namespace Multiprocessing.Tests;

/// <summary>Small inputs crafted to crash or exhaust a reader must end in a SerializationException.</summary>
public sealed class HostileInputTests
{
    private static readonly BinarySerializer s_serializer = BinarySerializer.Default;

    /// <summary>A message whose top-level value claims to be of <paramref name="type"/>, followed by <paramref name="body"/>.</summary>
    /// <remarks>Built from the encoding of the Type value itself: [marker][System.Type's id][inline definition of type] becomes [marker][inline definition of type][body].</remarks>
    private static byte[] ValueClaimingType(Type type, ReadOnlySpan<byte> body)
    {
        byte[] typeValue = s_serializer.Serialize<object>(type);
        Assert.True(typeValue[1] < 0x80); // the id of System.Type is a one-byte varint
        return [typeValue[0], .. typeValue.AsSpan(2), .. body];
    }

    private static Type HugeValueTuple()
    {
        Type level = typeof(decimal);
        for (int i = 0; i < 5; i++)
        {
            level = typeof(ValueTuple<,,,,,,>).MakeGenericType(level, level, level, level, level, level, level);
        }

        return level; // 16 B × 7^5 ≈ 269 KB
    }

    [Fact]
    public void A_value_type_too_large_for_the_stack_is_refused_not_read()
    {
        Type huge = HugeValueTuple();
        Assert.True(RuntimeHelpers.SizeOf(huge.TypeHandle) > 64 * 1024);
        byte[] payload = ValueClaimingType(huge, new byte[64]);
        var ex = Assert.Throws<SerializationException>(() => s_serializer.Deserialize(payload));
        Assert.Contains("larger than 64 KiB", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_type_with_a_finalizer_is_never_created_from_data()
    {
        Type enumerator = typeof(ConditionalWeakTable<object, object>).GetNestedType("Enumerator", System.Reflection.BindingFlags.NonPublic)!
            .MakeGenericType(typeof(object), typeof(object));
        byte[] payload = ValueClaimingType(enumerator, new byte[32]);
        var ex = Assert.Throws<SerializationException>(() => s_serializer.Deserialize(payload));
        Assert.Contains("finalizer", ex.Message, StringComparison.Ordinal);
        GC.Collect();
        GC.WaitForPendingFinalizers(); // the reviewer's payload crashed the process here
    }

    private sealed class OwnsResource
    {
        public static int Finalized;

        ~OwnsResource() => Interlocked.Increment(ref Finalized);
    }

    [Fact]
    public void Writing_an_object_with_a_finalizer_fails_with_the_reason()
    {
        var ex = Assert.Throws<SerializationException>(() => s_serializer.Serialize(new OwnsResource()));
        Assert.Contains("finalizer", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_huge_count_for_large_elements_is_refused_before_allocating()
    {
        Type big = HugeValueTuple().GetGenericArguments()[0]; // ≈ 38 KB: allowed, but costly per element
        Type listType = typeof(List<>).MakeGenericType(typeof(ValueTuple<,>).MakeGenericType(typeof(string), big));
        byte[] empty = s_serializer.Serialize(Activator.CreateInstance(listType));
        Assert.Equal(0, empty[^1]); // the count, last
        byte[] payload = [.. empty.AsSpan(0, empty.Length - 1), 0xC0, 0x9A, 0x0C, .. new byte[200_000]]; // count 200,000

        long before = GC.GetAllocatedBytesForCurrentThread();
        Assert.Throws<SerializationException>(() => s_serializer.Deserialize(payload));
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20, "the reader allocated for the claimed count");
    }

    [Fact]
    public void A_huge_collection_count_only_allocates_as_items_arrive()
    {
        byte[] empty = s_serializer.Serialize(new List<string>());
        Assert.Equal(0, empty[^1]);
        byte[] payload = [.. empty.AsSpan(0, empty.Length - 1), 0xFF, 0xFF, 0x0F, .. new byte[300_000]]; // a count of 262,143, then 300,000 nulls

        long before = GC.GetAllocatedBytesForCurrentThread();
        object? result = null;
        try
        {
            result = s_serializer.Deserialize(payload);
        }
        catch (SerializationException)
        {
        }

        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before < 64 << 20);
        Assert.True(result is null or List<string>);
    }
}
