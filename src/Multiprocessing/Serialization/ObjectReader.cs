using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Serialization;

namespace Multiprocessing.Serialization;

/// <summary>Reads values from the binary format; handed to <see cref="ObjectConverter{T}.Read"/>.</summary>
public ref struct ObjectReader
{
    [ThreadStatic]
    private static Type[]? t_genericArguments;

    [ThreadStatic]
    private static int t_genericArgumentsUsed;

    private readonly ReadOnlySpan<byte> _data;
    private int _position;
    private readonly ReaderState _state;

    internal ObjectReader(ReadOnlySpan<byte> data, ReaderState state)
    {
        _data = data;
        _state = state;
    }

    /// <summary>Bytes not read yet.</summary>
    public readonly int Remaining => _data.Length - _position;

    internal readonly int Position => _position;

    internal readonly ReaderState State => _state;

    /// <summary>Reads a value written by <see cref="ObjectWriter.WriteValue{T}"/>.</summary>
    public T ReadValue<T>()
    {
        if (typeof(T).IsValueType)
        {
            return ConverterCache<T>.Instance.Read(ref this);
        }

        return FromReference<T>(ReadReference());
    }

    /// <summary>Reads the top-level value written by <see cref="ObjectWriter.WriteRoot{T}"/>, checking its type.</summary>
    internal T ReadRoot<T>()
    {
        if (typeof(T).IsValueType && default(T) is not null)
        {
            // Read in place when the data holds exactly T (no boxing); anything else is a mismatch.
            ulong tag = ReadVarUInt();
            if (tag is Wire.Null or Wire.BackReference)
            {
                throw Mismatch(typeof(T), null);
            }

            TypeEntry entry = ReadTypeTag(tag);
            return entry.Type == typeof(T) ? ConverterCache<T>.Instance.Read(ref this) : throw Mismatch(typeof(T), entry.Type);
        }

        return FromReference<T>(ReadReference());
    }

    private static T FromReference<T>(object? value)
    {
        if (value is T typed)
        {
            return typed;
        }

        if (value is null && default(T) is null)
        {
            return default!;
        }

        throw Mismatch(typeof(T), value?.GetType());
    }

    private static SerializationException Mismatch(Type expected, Type? actual)
        => new($"Expected a {TypeNames.Display(expected)} but the data holds {(actual is null ? "null" : "a " + TypeNames.Display(actual))}.");

    /// <summary>Records <paramref name="value"/> as the object being read, so later references to it resolve (call it right after creating the object).</summary>
    public readonly void Register(object value)
    {
        if (_state.PendingSlot >= 0)
        {
            _state.Objects[_state.PendingSlot] = value;
            _state.PendingSlot = -1;
            if (_state.PendingCallback is { } callback)
            {
                _state.PendingCallback = null;
                callback(value);
            }
        }
    }

    /// <summary>Takes ownership of the OS handle the message carries at <paramref name="index"/>.</summary>
    internal readonly int TakeHandle(int index)
    {
        if (_state.Handles is not { } handles || (uint)index >= (uint)handles.Count || handles[index] < 0)
        {
            throw new SerializationException("The data refers to an OS handle that did not arrive with it (sent as plain bytes, or taken twice).");
        }

        int fd = handles[index];
        handles[index] = -1;
        return fd;
    }

    internal object? ReadReference() => ReadReference(null);

    /// <summary>
    /// Reads a reference; <paramref name="onRegistered"/>, if given, is called with the new object as soon as its
    /// converter registers it, before its contents are read (a delegate uses it to exist before its target's fields).
    /// </summary>
    internal object? ReadReference(Action<object>? onRegistered)
    {
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            // Each nested object is a level of recursion; overflowing the stack would end the whole process.
            throw new SerializationException("The serialized data is nested too deeply to read without overflowing the stack.");
        }

        ulong tag = ReadVarUInt();
        if (tag == Wire.Null)
        {
            return null;
        }

        if (tag == Wire.BackReference)
        {
            ulong index = ReadVarUInt();
            if (index >= (ulong)_state.Objects.Count)
            {
                throw Corrupt("a reference to an object that was never written");
            }

            return _state.Objects[(int)index]
                ?? throw new SerializationException("The data references an object while it is still being built (a cycle through a type whose converter cannot register early).");
        }

        TypeEntry entry = ReadTypeTag(tag);
        if (entry.Kind == TypeEntryKind.String)
        {
            return ReadStringBody();
        }

        int saved = _state.PendingSlot;
        Action<object>? savedCallback = _state.PendingCallback;
        if (entry.Kind == TypeEntryKind.Value)
        {
            // A boxed value has no slot: a Register call from its converter must not claim the enclosing object's.
            _state.PendingSlot = -1;
            _state.PendingCallback = null;
            object? value = entry.Converter.ReadObject(ref this);
            _state.PendingSlot = saved;
            _state.PendingCallback = savedCallback;
            return value;
        }

        int slot = _state.Objects.Count;
        _state.Objects.Add(null);
        _state.PendingSlot = slot;
        _state.PendingCallback = onRegistered;
        object? result = entry.Converter.ReadObject(ref this);
        _state.Objects[slot] ??= result;
        _state.PendingSlot = saved;
        _state.PendingCallback = savedCallback;
        return result;
    }

    internal Type ReadTypeReference() => ReadTypeTag(ReadVarUInt()).Type;

    private TypeEntry ReadTypeTag(ulong tag)
    {
        if (tag == Wire.InlineType)
        {
            TypeEntry entry = TypeEntry.For(ReadTypeDefinition());
            _state.Types.Add(entry);
            return entry;
        }

        if (tag < Wire.FirstDynamicId)
        {
            return Wire.Builtin(tag) ?? throw Corrupt($"unknown type id {tag}");
        }

        ulong index = tag - Wire.FirstDynamicId;
        if (index >= (ulong)_state.Types.Count)
        {
            throw Corrupt($"unknown type id {tag}");
        }

        return _state.Types[(int)index];
    }

    private Type ReadTypeDefinition()
    {
        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            throw new SerializationException("The serialized data holds a type nested too deeply to read without overflowing the stack.");
        }

        byte kind = ReadByte();
        switch (kind)
        {
            case Wire.KindNamed:
                ReadOnlySpan<char> assembly = ReadStringSpan("a type without an assembly name");
                ReadOnlySpan<char> name = ReadStringSpan("a type without a name");
                return TypeResolver.EnsureMaterializable(TypeResolver.Resolve(assembly, name));
            case Wire.KindArray:
                return TypeResolver.MakeArray(ReadTypeReference(), 1, sz: true);
            case Wire.KindMultiArray:
                Type element = ReadTypeReference();
                return TypeResolver.MakeArray(element, (int)ReadVarUInt(), sz: false);
            case Wire.KindGeneric:
                Type definition = ReadTypeReference();
                ulong count = ReadVarUInt();
                if (count > 64)
                {
                    throw Corrupt("a generic type with too many arguments");
                }

                // Arguments go on a per-thread stack (an argument can itself be generic), so a known instantiation is found
                // without allocating. Past the stack's depth, a plain array.
                Type[] stack = t_genericArguments ??= new Type[256];
                int start = t_genericArgumentsUsed;
                Span<Type> arguments = start + (int)count <= stack.Length ? stack.AsSpan(start, (int)count) : new Type[count];
                t_genericArgumentsUsed = start + arguments.Length;
                try
                {
                    for (int i = 0; i < arguments.Length; i++)
                    {
                        arguments[i] = ReadTypeReference();
                    }

                    return TypeResolver.EnsureMaterializable(TypeResolver.MakeGeneric(definition, arguments));
                }
                finally
                {
                    arguments.Clear();
                    t_genericArgumentsUsed = start;
                }
            default:
                throw Corrupt($"unknown type kind {kind}");
        }
    }

    /// <summary>Reads one byte.</summary>
    public byte ReadByte()
    {
        if (_position >= _data.Length)
        {
            throw Truncated();
        }

        return _data[_position++];
    }

    /// <summary>Reads a bool written by <see cref="ObjectWriter.WriteBoolean"/>.</summary>
    public bool ReadBoolean() => ReadByte() != 0;

    /// <summary>Reads a 32-bit integer.</summary>
    public int ReadInt32() => ReadRaw<int>();

    /// <summary>Reads a 64-bit integer.</summary>
    public long ReadInt64() => ReadRaw<long>();

    /// <summary>Reads a double.</summary>
    public double ReadDouble() => ReadRaw<double>();

    /// <summary>Reads an integer written by <see cref="ObjectWriter.WriteVarUInt"/>.</summary>
    public ulong ReadVarUInt()
    {
        ulong result = 0;
        int shift = 0;
        while (true)
        {
            byte b = ReadByte();
            result |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return result;
            }

            shift += 7;
            if (shift > 63)
            {
                throw Corrupt("an over-long integer");
            }
        }
    }

    /// <summary>Reads a length written by the writer and checks that at least <paramref name="minimumBytesEach"/> bytes per item remain.</summary>
    internal int ReadLength(int minimumBytesEach)
    {
        ulong length = ReadVarUInt();
        if (length > int.MaxValue || (minimumBytesEach > 0 && length > (ulong)Remaining / (ulong)minimumBytesEach))
        {
            throw Corrupt($"a length of {length} with only {Remaining} bytes left");
        }

        return (int)length;
    }

    /// <summary>Reads a string or null.</summary>
    public string? ReadString() => ReadVarUInt() switch
    {
        0 => null,
        1 => ReadStringBody(),
        _ => throw Corrupt("a bad string marker"),
    };

    /// <summary>Reads a non-null string written by <see cref="ObjectWriter.WriteString"/> as characters over the message.</summary>
    private ReadOnlySpan<char> ReadStringSpan(string whatIfNull)
    {
        if (ReadVarUInt() != 1)
        {
            throw Corrupt(whatIfNull);
        }

        int length = ReadLength(2);
        return MemoryMarshal.Cast<byte, char>(ReadSpan(length * 2));
    }

    internal string ReadStringBody()
    {
        int length = ReadLength(2);
        ReadOnlySpan<byte> bytes = ReadSpan(length * 2);
        return new string(MemoryMarshal.Cast<byte, char>(bytes));
    }

    /// <summary>Reads a byte block written by <see cref="ObjectWriter.WriteBytes"/>.</summary>
    public byte[] ReadBytes() => ReadSpan(ReadLength(1)).ToArray();

    internal ReadOnlySpan<byte> ReadSpan(int length)
    {
        if ((uint)length > (uint)(_data.Length - _position))
        {
            throw Truncated();
        }

        ReadOnlySpan<byte> result = _data.Slice(_position, length);
        _position += length;
        return result;
    }

    internal T ReadRaw<T>()
    {
        int size = Unsafe.SizeOf<T>();
        if (_data.Length - _position < size)
        {
            throw Truncated();
        }

        T value = Unsafe.ReadUnaligned<T>(ref Unsafe.AsRef(in _data[_position]));
        _position += size;
        return value;
    }

    internal Guid ReadGuid() => new(ReadSpan(16));

    private static SerializationException Truncated() => new("The serialized data ends in the middle of a value (truncated or corrupt input).");

    internal static SerializationException Corrupt(string what) => new($"The serialized data is corrupt: it contains {what}.");
}

/// <summary>Per-message tables of a reader: objects by id (for shared references) and types defined inline.</summary>
internal sealed class ReaderState
{
    public List<object?> Objects { get; } = [];

    public List<TypeEntry> Types { get; } = [];

    /// <summary>The slot the object being read takes when its converter calls <see cref="ObjectReader.Register"/>; -1 once taken.</summary>
    public int PendingSlot { get; set; } = -1;

    /// <summary>Called with the object registered in <see cref="PendingSlot"/>, right after it is registered.</summary>
    public Action<object>? PendingCallback { get; set; }

    /// <summary>OS handles (descriptors) that arrived with the message, by index; taken ones are set to −1.</summary>
    public List<int>? Handles { get; set; }

    /// <summary>Closes the handles no value took, so a message never leaks descriptors into this process.</summary>
    public void CloseUntakenHandles(Action<int> close)
    {
        if (Handles is null)
        {
            return;
        }

        for (int i = 0; i < Handles.Count; i++)
        {
            if (Handles[i] >= 0)
            {
                close(Handles[i]);
                Handles[i] = -1; // the list may be the caller's: never close a descriptor twice
            }
        }

        Handles = null;
    }

    public void Reset()
    {
        Objects.Clear();
        Types.Clear();
        PendingSlot = -1;
        PendingCallback = null;
    }
}

internal enum TypeEntryKind : byte
{
    Reference,
    Value,
    String,
}

/// <summary>A resolved type on the wire and its converter; one per type, shared by all messages.</summary>
internal sealed class TypeEntry(Type type)
{
    private static readonly ReadMostlyCache<Type, TypeEntry> s_entries = new();

    public static TypeEntry For(Type type) => s_entries.TryGetValue(type, out TypeEntry entry) ? entry : s_entries.GetOrAdd(type, static t => new TypeEntry(t));

    public Type Type { get; } = type;

    public TypeEntryKind Kind { get; } = type == typeof(string) ? TypeEntryKind.String : type.IsValueType ? TypeEntryKind.Value : TypeEntryKind.Reference;

    private ObjectConverter? _converter;

    public ObjectConverter Converter => _converter ??= Converters.For(Type);
}
