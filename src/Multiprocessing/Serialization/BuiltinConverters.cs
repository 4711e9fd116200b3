using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Multiprocessing.Serialization;

/// <summary>Value types without references or pointers (primitives, enums, decimal, DateTime, Guid, blittable structs): their bytes.</summary>
internal sealed class RawConverter<T> : ObjectConverter<T>
{
    public override void Write(ObjectWriter writer, T value) => writer.WriteRaw(value);

    public override T Read(ref ObjectReader reader) => reader.ReadRaw<T>();
}

/// <summary>Limits on what a count read from the wire may make a reader allocate.</summary>
internal static class Allocation
{
    /// <summary>Collections grow past this capacity only as items actually arrive.</summary>
    public const int MaximumInitialCapacity = 4096;

    /// <summary>The fewest serialized bytes an element of <typeparamref name="T"/> can take, scaled so an array of them costs at most 16 bytes of memory per byte of input.</summary>
    public static int MinimumBytesPerElement<T>(bool raw)
        => raw ? Math.Max(1, Unsafe.SizeOf<T>()) : typeof(T).IsValueType ? Math.Max(1, Unsafe.SizeOf<T>() / 16) : 1;

    public static int InitialCapacity(int count) => Math.Min(count, MaximumInitialCapacity);
}

/// <summary>Views spans of raw-copyable values as bytes (the generic constraint cannot be expressed on converters).</summary>
internal static class RawBytes
{
    public static Span<byte> Of<T>(Span<T> span)
        => MemoryMarshal.CreateSpan(ref Unsafe.As<T, byte>(ref MemoryMarshal.GetReference(span)), span.Length * Unsafe.SizeOf<T>());
}

internal sealed class StringConverter : ObjectConverter<string>
{
    public override void Write(ObjectWriter writer, string value) => writer.WriteStringBody(value);

    public override string Read(ref ObjectReader reader) => reader.ReadStringBody();
}

internal sealed class NullableConverter<T> : ObjectConverter<T?>
    where T : struct
{
    public override void Write(ObjectWriter writer, T? value)
    {
        writer.WriteBoolean(value.HasValue);
        if (value.HasValue)
        {
            writer.WriteValue(value.GetValueOrDefault());
        }
    }

    public override T? Read(ref ObjectReader reader) => reader.ReadBoolean() ? reader.ReadValue<T>() : null;
}

/// <summary>A value that may not cross: writing it fails with the reason; reading it is refused too.</summary>
/// <summary>A converter whose refusal reason is set after parameterless construction.</summary>
internal interface IReasonedConverter
{
    string Reason { get; set; }
}

/// <summary>A multi-dimensional array converter whose rank is set after parameterless construction.</summary>
internal interface IRankedConverter
{
    int Rank { get; set; }
}

internal sealed class RejectConverter<T> : ObjectConverter<T>, IReasonedConverter
{
    public string Reason { get; set; } = "cannot cross a process boundary";

    internal override string? ReasonToLeaveOutWhenUnread(ObjectWriter writer, object value) => Reason;

    public override void Write(ObjectWriter writer, T value) => throw new CrossingException(value?.GetType() ?? typeof(T), Reason);

    public override T Read(ref ObjectReader reader) => throw new System.Runtime.Serialization.SerializationException($"The data holds a {TypeNames.Display(typeof(T))}, which {Reason}.");
}

/// <summary>System.Type values, as type references.</summary>
internal sealed class TypeValueConverter<T> : ObjectConverter<T>
    where T : Type
{
    public override void Write(ObjectWriter writer, T value) => writer.WriteTypeReference(value);

    public override T Read(ref ObjectReader reader) => (T)reader.ReadTypeReference();
}

internal sealed class ArrayConverter<T> : ObjectConverter<T[]>
{
    private static readonly bool s_raw = Converters.IsRawCopyable(typeof(T));

    public override void Write(ObjectWriter writer, T[] value)
    {
        writer.WriteVarUInt((uint)value.Length);
        if (s_raw)
        {
            writer.WriteSpan(RawBytes.Of(value.AsSpan()));
            return;
        }

        for (int i = 0; i < value.Length; i++)
        {
            try
            {
                writer.WriteValue(value[i]);
            }
            catch (CrossingException ex)
            {
                ex.AddStep($"element [{i}]");
                throw;
            }
        }
    }

    public override T[] Read(ref ObjectReader reader)
    {
        int length = reader.ReadLength(Allocation.MinimumBytesPerElement<T>(s_raw));
        var array = new T[length];
        reader.Register(array);
        if (s_raw)
        {
            reader.ReadSpan(length * Unsafe.SizeOf<T>()).CopyTo(RawBytes.Of(array.AsSpan()));
            return array;
        }

        for (int i = 0; i < array.Length; i++)
        {
            array[i] = reader.ReadValue<T>();
        }

        return array;
    }
}

/// <summary>Arrays of rank 2 and more, and single-rank arrays with a non-zero lower bound.</summary>
internal sealed class MultiArrayConverter<T> : ObjectConverter<Array>, IRankedConverter
{
    public int Rank { get; set; } = 2;

    public override void Write(ObjectWriter writer, Array value)
    {
        for (int d = 0; d < value.Rank; d++)
        {
            writer.WriteVarUInt((uint)value.GetLength(d));
            writer.WriteInt32(value.GetLowerBound(d));
        }

        Span<T> elements = Elements(value);
        for (int i = 0; i < elements.Length; i++)
        {
            try
            {
                writer.WriteValue(elements[i]);
            }
            catch (CrossingException ex)
            {
                ex.AddStep($"element #{i}");
                throw;
            }
        }
    }

    public override Array Read(ref ObjectReader reader)
    {
        int rank = Rank;
        var lengths = new int[rank];
        var lowerBounds = new int[rank];
        long total = 1;
        for (int d = 0; d < rank; d++)
        {
            lengths[d] = reader.ReadLength(0);
            lowerBounds[d] = reader.ReadInt32();
            total *= lengths[d];
            if (total > reader.Remaining / Allocation.MinimumBytesPerElement<T>(raw: false))
            {
                throw ObjectReader.Corrupt("an array larger than the data");
            }
        }

        Array array = Array.CreateInstance(typeof(T), lengths, lowerBounds);
        reader.Register(array);
        Span<T> elements = Elements(array);
        for (int i = 0; i < elements.Length; i++)
        {
            elements[i] = reader.ReadValue<T>();
        }

        return array;
    }

    private static Span<T> Elements(Array array)
        => MemoryMarshal.CreateSpan(ref Unsafe.As<byte, T>(ref MemoryMarshal.GetArrayDataReference(array)), array.Length);
}

internal sealed class ListConverter<T> : ObjectConverter<List<T>>
{
    private static readonly bool s_raw = Converters.IsRawCopyable(typeof(T));

    public override void Write(ObjectWriter writer, List<T> value)
    {
        Span<T> items = CollectionsMarshal.AsSpan(value);
        writer.WriteVarUInt((uint)items.Length);
        if (s_raw)
        {
            writer.WriteSpan(RawBytes.Of(items));
            return;
        }

        for (int i = 0; i < items.Length; i++)
        {
            try
            {
                writer.WriteValue(items[i]);
            }
            catch (CrossingException ex)
            {
                ex.AddStep($"item [{i}]");
                throw;
            }
        }
    }

    public override List<T> Read(ref ObjectReader reader)
    {
        int count = reader.ReadLength(Allocation.MinimumBytesPerElement<T>(s_raw));
        var list = new List<T>(s_raw ? count : Allocation.InitialCapacity(count));
        reader.Register(list);
        if (s_raw)
        {
            CollectionsMarshal.SetCount(list, count);
            reader.ReadSpan(count * Unsafe.SizeOf<T>()).CopyTo(RawBytes.Of(CollectionsMarshal.AsSpan(list)));
            return list;
        }

        for (int i = 0; i < count; i++)
        {
            list.Add(reader.ReadValue<T>());
        }

        return list;
    }
}

/// <summary>Shared code of the hash-based collections: their stored hash codes are per-process, so they are rebuilt.</summary>
internal static class CollectionParts
{
    public static void WriteComparer<T>(ObjectWriter writer, IEqualityComparer<T> comparer)
        => writer.WriteValue<object?>(ReferenceEquals(comparer, EqualityComparer<T>.Default) ? null : comparer);

    public static IEqualityComparer<T>? ReadComparer<T>(ref ObjectReader reader) => reader.ReadValue<IEqualityComparer<T>?>();

    public static void WriteItem<T>(ObjectWriter writer, T item, string step)
    {
        try
        {
            writer.WriteValue(item);
        }
        catch (CrossingException ex)
        {
            ex.AddStep(step);
            throw;
        }
    }
}

internal sealed class DictionaryConverter<TKey, TValue> : ObjectConverter<Dictionary<TKey, TValue>>
    where TKey : notnull
{
    public override void Write(ObjectWriter writer, Dictionary<TKey, TValue> value)
    {
        CollectionParts.WriteComparer(writer, value.Comparer);
        writer.WriteVarUInt((uint)value.Count);
        foreach (KeyValuePair<TKey, TValue> pair in value)
        {
            CollectionParts.WriteItem(writer, pair.Key, "key");
            CollectionParts.WriteItem(writer, pair.Value, $"value for key '{pair.Key}'");
        }
    }

    public override Dictionary<TKey, TValue> Read(ref ObjectReader reader)
    {
        IEqualityComparer<TKey>? comparer = CollectionParts.ReadComparer<TKey>(ref reader);
        int count = reader.ReadLength(2);
        var dictionary = new Dictionary<TKey, TValue>(Allocation.InitialCapacity(count), comparer);
        reader.Register(dictionary);
        for (int i = 0; i < count; i++)
        {
            TKey key = reader.ReadValue<TKey>();
            dictionary[key] = reader.ReadValue<TValue>();
        }

        return dictionary;
    }
}

internal sealed class ConcurrentDictionaryConverter<TKey, TValue> : ObjectConverter<ConcurrentDictionary<TKey, TValue>>
    where TKey : notnull
{
    public override void Write(ObjectWriter writer, ConcurrentDictionary<TKey, TValue> value)
    {
        CollectionParts.WriteComparer(writer, value.Comparer);
        KeyValuePair<TKey, TValue>[] pairs = value.ToArray();
        writer.WriteVarUInt((uint)pairs.Length);
        foreach (KeyValuePair<TKey, TValue> pair in pairs)
        {
            CollectionParts.WriteItem(writer, pair.Key, "key");
            CollectionParts.WriteItem(writer, pair.Value, $"value for key '{pair.Key}'");
        }
    }

    public override ConcurrentDictionary<TKey, TValue> Read(ref ObjectReader reader)
    {
        IEqualityComparer<TKey>? comparer = CollectionParts.ReadComparer<TKey>(ref reader);
        int count = reader.ReadLength(2);
        var dictionary = new ConcurrentDictionary<TKey, TValue>(comparer);
        reader.Register(dictionary);
        for (int i = 0; i < count; i++)
        {
            TKey key = reader.ReadValue<TKey>();
            dictionary[key] = reader.ReadValue<TValue>();
        }

        return dictionary;
    }
}

internal sealed class HashSetConverter<T> : ObjectConverter<HashSet<T>>
{
    public override void Write(ObjectWriter writer, HashSet<T> value)
    {
        CollectionParts.WriteComparer(writer, value.Comparer);
        writer.WriteVarUInt((uint)value.Count);
        foreach (T item in value)
        {
            CollectionParts.WriteItem(writer, item, "item");
        }
    }

    public override HashSet<T> Read(ref ObjectReader reader)
    {
        IEqualityComparer<T>? comparer = CollectionParts.ReadComparer<T>(ref reader);
        int count = reader.ReadLength(1);
        var set = new HashSet<T>(Allocation.InitialCapacity(count), comparer);
        reader.Register(set);
        for (int i = 0; i < count; i++)
        {
            set.Add(reader.ReadValue<T>());
        }

        return set;
    }
}

internal sealed class QueueConverter<T> : ObjectConverter<System.Collections.Generic.Queue<T>>
{
    public override void Write(ObjectWriter writer, System.Collections.Generic.Queue<T> value)
    {
        writer.WriteVarUInt((uint)value.Count);
        foreach (T item in value)
        {
            CollectionParts.WriteItem(writer, item, "item");
        }
    }

    public override System.Collections.Generic.Queue<T> Read(ref ObjectReader reader)
    {
        int count = reader.ReadLength(1);
        var queue = new System.Collections.Generic.Queue<T>(Allocation.InitialCapacity(count));
        reader.Register(queue);
        for (int i = 0; i < count; i++)
        {
            queue.Enqueue(reader.ReadValue<T>());
        }

        return queue;
    }
}

internal sealed class StackConverter<T> : ObjectConverter<Stack<T>>
{
    public override void Write(ObjectWriter writer, Stack<T> value)
    {
        T[] topFirst = value.ToArray();
        writer.WriteVarUInt((uint)topFirst.Length);
        for (int i = topFirst.Length - 1; i >= 0; i--)
        {
            CollectionParts.WriteItem(writer, topFirst[i], "item");
        }
    }

    public override Stack<T> Read(ref ObjectReader reader)
    {
        int count = reader.ReadLength(1);
        var stack = new Stack<T>(Allocation.InitialCapacity(count));
        reader.Register(stack);
        for (int i = 0; i < count; i++)
        {
            stack.Push(reader.ReadValue<T>());
        }

        return stack;
    }
}
