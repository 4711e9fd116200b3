using System.Buffers.Binary;
using System.Collections;
using System.Text;
using Multiprocessing.Serialization;

namespace Multiprocessing;

/// <summary>
/// A fixed-length list in a named shared memory block (Python's <c>ShareableList</c>, in the very same layout, so a
/// Python process attaches to ours and we to its). Slots hold <see cref="long"/>, <see cref="double"/>,
/// <see cref="bool"/>, <see cref="string"/>, <c>byte[]</c> or null.
/// </summary>
/// <remarks>
/// A string or bytes slot keeps the capacity it was created with (its UTF-8 length rounded up to the next multiple of
/// 8, at least 8 bytes), and any slot can later hold a number, a bool, null, or a string or bytes up to its capacity.
/// As in Python, trailing NUL characters of strings and bytes are not kept, and nothing synchronizes concurrent writers.
/// </remarks>
public sealed class ShareableList : IReadOnlyList<object?>, IDisposable
{
    private const int Alignment = 8;
    private const byte PlainCode = 0, StringCode = 1, BytesCode = 2, NullCode = 3;
    private const string LongFormat = "q", DoubleFormat = "d", BoolFormat = "xxxxxxx?", NullFormat = "xxxxxx?x";

    private readonly long[] _offsets; // N + 1 offsets into the data area, as Python stores them

    /// <summary>Creates a list in a new block holding <paramref name="items"/>.</summary>
    /// <param name="items">The initial values: integers (stored as <see cref="long"/>), floating-point numbers (as <see cref="double"/>), bools, strings, byte arrays or null.</param>
    /// <param name="name">The block's name; a fresh one when null.</param>
    /// <param name="track">As for <see cref="SharedMemory"/>: whether the block is removed once its creator and users have ended.</param>
    /// <exception cref="ArgumentException">An item of a type a slot cannot hold.</exception>
    public ShareableList(IEnumerable<object?> items, string? name = null, bool track = true)
    {
        ArgumentNullException.ThrowIfNull(items);
        object?[] values = items.Select(Normalize).ToArray();
        Count = values.Length;
        var formats = new string[Count];
        _offsets = new long[Count + 1];
        for (int i = 0; i < Count; i++)
        {
            formats[i] = FormatOf(values[i], capacity: values[i] is byte[] or string ? RoundUp(EncodedLength(values[i]!)) : Alignment);
            _offsets[i + 1] = _offsets[i] + (values[i] is byte[] or string ? RoundUp(EncodedLength(values[i]!)) : Alignment);
        }

        long size = DataStart + _offsets[Count] + (Count * 8L) + Count;
        Shm = new SharedMemory(name, create: true, size: (int)Math.Max(size, 1), track: track);
        Span<byte> block = Shm.Span;
        BinaryPrimitives.WriteInt64LittleEndian(block, Count);
        for (int i = 0; i <= Count; i++)
        {
            BinaryPrimitives.WriteInt64LittleEndian(block[(8 + (i * 8))..], _offsets[i]);
        }

        for (int i = 0; i < Count; i++)
        {
            Store(i, values[i], formats[i]);
        }
    }

    private ShareableList(SharedMemory shm)
    {
        Shm = shm;
        try
        {
            ReadOnlySpan<byte> block = shm.Span;
            long count = block.Length >= 8 ? BinaryPrimitives.ReadInt64LittleEndian(block) : -1;
            if (count < 0 || (count + 2) * 8 > block.Length)
            {
                throw new InvalidDataException($"Shared memory '{shm.Name}' does not hold a ShareableList.");
            }

            Count = (int)count;
            _offsets = new long[Count + 1];
            for (int i = 0; i <= Count; i++)
            {
                _offsets[i] = BinaryPrimitives.ReadInt64LittleEndian(block[(8 + (i * 8))..]);
                if (_offsets[i] < (i == 0 ? 0 : _offsets[i - 1]))
                {
                    throw new InvalidDataException($"Shared memory '{shm.Name}' does not hold a ShareableList (its offsets are out of order).");
                }
            }

            if (BackTransformsStart + Count > block.Length)
            {
                throw new InvalidDataException($"Shared memory '{shm.Name}' is too small for the ShareableList it describes.");
            }
        }
        catch
        {
            shm.Dispose();
            throw;
        }
    }

    /// <summary>Attaches to the list in the block named <paramref name="name"/> (created by this library or by Python).</summary>
    /// <exception cref="FileNotFoundException">No block has that name.</exception>
    /// <exception cref="InvalidDataException">The block does not hold a ShareableList.</exception>
    public static ShareableList Attach(string name) => new(new SharedMemory(name));

    /// <summary>Wraps a block that already holds a list (a crossed one).</summary>
    internal static ShareableList Over(SharedMemory shm) => new(shm);

    /// <summary>The block behind the list (Python's <c>shm</c>).</summary>
    public SharedMemory Shm { get; }

    /// <summary>The block's name: other processes attach with <see cref="Attach"/>.</summary>
    public string Name => Shm.Name;

    /// <summary>The number of slots; fixed.</summary>
    public int Count { get; }

    /// <summary>The slots' packing formats, concatenated as Python's <c>format</c> property gives them.</summary>
    public string Format
    {
        get
        {
            var text = new StringBuilder();
            for (int i = 0; i < Count; i++)
            {
                text.Append(FormatAt(i));
            }

            return text.ToString();
        }
    }

    private long DataStart => (Count + 2) * 8L;

    private long FormatsStart => DataStart + _offsets[Count];

    private long BackTransformsStart => FormatsStart + (Count * 8L);

    /// <summary>Gets or sets a slot.</summary>
    /// <exception cref="IndexOutOfRangeException"><paramref name="index"/> is outside 0 … Count − 1.</exception>
    /// <exception cref="ArgumentException">A value of a type a slot cannot hold, or a string or bytes longer than the slot's capacity.</exception>
    public object? this[int index]
    {
        get
        {
            CheckIndex(index);
            ReadOnlySpan<byte> slot = Slot(index);
            string format = FormatAt(index);
            return Shm.Span[(int)(BackTransformsStart + index)] switch
            {
                NullCode => null,
                StringCode => Encoding.UTF8.GetString(slot[..ParseCapacity(format)].TrimEnd((byte)0)),
                BytesCode => slot[..ParseCapacity(format)].TrimEnd((byte)0).ToArray(),
                _ => format switch
                {
                    LongFormat => BinaryPrimitives.ReadInt64LittleEndian(slot),
                    DoubleFormat => BinaryPrimitives.ReadDoubleLittleEndian(slot),
                    BoolFormat => slot[7] != 0,
                    _ => throw new InvalidDataException($"Slot {index} of '{Name}' has a format this library does not read: '{format}'."),
                },
            };
        }

        set
        {
            CheckIndex(index);
            object? normalized = Normalize(value);
            int capacity = Capacity(index);
            string format = normalized switch
            {
                string or byte[] when EncodedLength(normalized) > capacity => throw new ArgumentException(
                    $"The {(normalized is string ? "string" : "bytes")} is {EncodedLength(normalized)} bytes long; slot {index} holds at most {capacity}.", nameof(value)),
                string or byte[] => FormatAt(index) is var current && current.EndsWith('s') ? current : FormatOf(normalized, capacity),
                _ => FormatOf(normalized, capacity),
            };
            Store(index, normalized, format);
        }
    }

    /// <summary>The capacity in bytes of slot <paramref name="index"/> (the longest string, in UTF-8, or bytes it can hold).</summary>
    public int Capacity(int index)
    {
        CheckIndex(index);
        return (int)(_offsets[index + 1] - _offsets[index]);
    }

    /// <summary>How many slots equal <paramref name="value"/> (Python's <c>count</c>).</summary>
    public int CountOf(object? value) => this.Count(item => SlotEquals(item, Normalize(value)));

    /// <summary>The first slot equal to <paramref name="value"/>, or −1 (Python's <c>index</c> raises instead).</summary>
    public int IndexOf(object? value)
    {
        object? wanted = Normalize(value);
        for (int i = 0; i < Count; i++)
        {
            if (SlotEquals(this[i], wanted))
            {
                return i;
            }
        }

        return -1;
    }

    /// <summary>Enumerates the slots' current values.</summary>
    public IEnumerator<object?> GetEnumerator()
    {
        for (int i = 0; i < Count; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Unmaps the list from this process; see <see cref="SharedMemory.Close"/>.</summary>
    public void Close() => Shm.Close();

    /// <summary>Removes the block's name; see <see cref="SharedMemory.Unlink"/>.</summary>
    public void Unlink() => Shm.Unlink();

    /// <summary>Unmaps the list from this process (the block stays for others).</summary>
    public void Dispose() => Shm.Dispose();

    /// <summary>Like Python's repr: <c>ShareableList([…], name='…')</c>.</summary>
    public override string ToString()
        => $"ShareableList([{string.Join(", ", this.Select(Describe))}], name='{Name}')";

    private static string Describe(object? value) => value switch
    {
        null => "None",
        string s => $"'{s}'",
        bool b => b ? "True" : "False",
        byte[] bytes => $"b'{Encoding.Latin1.GetString(bytes)}'",
        double d => d.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        _ => Convert.ToString(value, System.Globalization.CultureInfo.InvariantCulture) ?? "",
    };

    private void CheckIndex(int index)
    {
        if ((uint)index >= (uint)Count)
        {
#pragma warning disable CA2201 // the issue asks for it: indexing behaves as an array's (Python's IndexError)
            throw new IndexOutOfRangeException($"Index {index} is outside the ShareableList of {Count} slots.");
#pragma warning restore CA2201
        }
    }

    private Span<byte> Slot(int index) => Shm.Span.Slice((int)(DataStart + _offsets[index]), (int)(_offsets[index + 1] - _offsets[index]));

    private string FormatAt(int index)
    {
        ReadOnlySpan<byte> raw = Shm.Span.Slice((int)(FormatsStart + (index * 8L)), 8).TrimEnd((byte)0);
        return Encoding.ASCII.GetString(raw);
    }

    private void Store(int index, object? value, string format)
    {
        Span<byte> block = Shm.Span;
        Span<byte> formatSlot = block.Slice((int)(FormatsStart + (index * 8L)), 8);
        formatSlot.Clear();
        Encoding.ASCII.GetBytes(format, formatSlot);
        block[(int)(BackTransformsStart + index)] = value switch
        {
            string => StringCode,
            byte[] => BytesCode,
            null => NullCode,
            _ => PlainCode,
        };

        Span<byte> slot = Slot(index);
        switch (value)
        {
            case long number:
                BinaryPrimitives.WriteInt64LittleEndian(slot, number);
                break;
            case double number:
                BinaryPrimitives.WriteDoubleLittleEndian(slot, number);
                break;
            case bool flag:
                slot[..8].Clear();
                slot[7] = flag ? (byte)1 : (byte)0;
                break;
            case null:
                slot[..8].Clear();
                break;
            case string text:
                slot[..ParseCapacity(format)].Clear();
                Encoding.UTF8.GetBytes(text, slot);
                break;
            case byte[] bytes:
                slot[..ParseCapacity(format)].Clear();
                bytes.CopyTo(slot);
                break;
        }
    }

    private static object? Normalize(object? value) => value switch
    {
        null or long or double or bool or string or byte[] => value,
        int or short or sbyte or byte or ushort or uint => Convert.ToInt64(value, System.Globalization.CultureInfo.InvariantCulture),
        ulong big when big <= long.MaxValue => (long)big,
        float single => (double)single,
        _ => throw new ArgumentException($"A ShareableList slot holds long, double, bool, string, byte[] or null, not {value.GetType().Name}{(value is ulong ? " beyond long.MaxValue" : "")}.", nameof(value)),
    };

    private static string FormatOf(object? value, int capacity) => value switch
    {
        long => LongFormat,
        double => DoubleFormat,
        bool => BoolFormat,
        null => NullFormat,
        _ => capacity.ToString(System.Globalization.CultureInfo.InvariantCulture) + "s",
    };

    private static int ParseCapacity(string format)
        => int.TryParse(format.AsSpan(0, format.Length - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int capacity)
            ? capacity
            : throw new InvalidDataException($"'{format}' is not a string or bytes slot format.");

    private static int EncodedLength(object value) => value is string text ? Encoding.UTF8.GetByteCount(text) : ((byte[])value).Length;

    // Python: alignment * (len(item) // alignment + 1) — always at least one byte of room past the item.
    private static int RoundUp(int length) => Alignment * ((length / Alignment) + 1);

    private static bool SlotEquals(object? item, object? wanted) => (item, wanted) switch
    {
        (null, null) => true,
        (byte[] a, byte[] b) => a.AsSpan().SequenceEqual(b),
        (long a, double b) => a == b,
        (double a, long b) => a == b,
        _ => Equals(item, wanted),
    };
}
