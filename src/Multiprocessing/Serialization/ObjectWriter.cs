using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Multiprocessing.Serialization;

/// <summary>Writes values into the binary format; handed to <see cref="ObjectConverter{T}.Write"/>.</summary>
/// <remarks>Values written with <see cref="WriteValue{T}"/> keep object identity (shared references and cycles survive).</remarks>
public sealed class ObjectWriter
{
    private byte[] _buffer;
    private int _position;
    private readonly Dictionary<object, int> _objectIds = new(ReferenceEqualityComparer.Instance);
    private readonly Dictionary<Type, int> _typeIds = [];
    private Type? _lastType;
    private ObjectConverter? _lastConverter;

    internal ObjectWriter(int capacity = 256) => _buffer = new byte[capacity];

    /// <summary>The object allowed to cross although its type normally may not (a process being started).</summary>
    internal object? PrivilegedRoot { get; set; }

    /// <summary>The closure fields the lambda whose target is being written reads; null when unknown or not in a closure.</summary>
    internal HashSet<(System.Reflection.Module, int)>? ClosureUses { get; set; }

    /// <summary>Closure fields skipped because their value could not cross and the lambda being written did not read them.</summary>
    internal Dictionary<object, List<((System.Reflection.Module, int) Field, CrossingException Error)>>? SkippedClosureFields { get; set; }

    internal bool HasWritten(object value) => _objectIds.ContainsKey(value);

    /// <summary>Whether the transport this message goes out on can carry OS handles alongside it (a Unix socket).</summary>
    internal bool CanCarryHandles { get; set; }

    /// <summary>OS handles the message refers to by index, to be sent with it.</summary>
    internal List<System.Runtime.InteropServices.SafeHandle>? Handles { get; private set; }

    /// <summary>Adds an OS handle to travel with the message and returns its index; refused where the transport cannot carry handles.</summary>
    internal int AddHandle(System.Runtime.InteropServices.SafeHandle handle, Type owner)
    {
        if (!CanCarryHandles)
        {
            throw new CrossingException(owner, "cannot cross here: it holds an OS handle, which only goes to a child at Start or over a local connection (Unix socket), not into plain bytes");
        }

        Handles ??= [];
        Handles.Add(handle);
        return Handles.Count - 1;
    }

    /// <summary>The non-built-in types written so far in this message.</summary>
    internal Type[] WrittenTypes => [.. _typeIds.Keys];

    /// <summary>Whether <see cref="WrittenMethods"/> is kept (for start requests only: other messages must not allocate for it).</summary>
    internal bool RecordsMethods { get; set; }

    /// <summary>The delegates' methods written so far (with the delegate type of each), for a spare child to prepare; null if none.</summary>
    internal List<(Type Delegate, System.Reflection.MethodInfo Method)>? WrittenMethods { get; private set; }

    /// <summary>Records, if <see cref="RecordsMethods"/>, that a delegate of type <paramref name="delegateType"/> over <paramref name="method"/> was written.</summary>
    internal void NoteMethod(Type delegateType, System.Reflection.MethodInfo method)
    {
        if (RecordsMethods)
        {
            (WrittenMethods ??= []).Add((delegateType, method));
        }
    }

    internal ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _position);

    internal int Length => _position;

    /// <summary>Starts another message behind the ones written (several framed messages sent in one write): forgets this message's objects and types, keeps the bytes.</summary>
    internal void BeginNextMessage()
    {
        if (_objectIds.Count > 0)
        {
            _objectIds.Clear();
        }

        if (_typeIds.Count > 0)
        {
            _typeIds.Clear();
        }

        ClosureUses = null;
        SkippedClosureFields = null;
    }

    /// <summary>Drops what was written after <paramref name="length"/>, and the handles after the first <paramref name="handles"/> (a message that failed to serialize).</summary>
    internal void Truncate(int length, int handles)
    {
        _position = length;
        if (Handles is { } list && list.Count > handles)
        {
            list.RemoveRange(handles, list.Count - handles);
        }
    }

    internal void Reset()
    {
        _position = 0;
        if (_objectIds.Count > 0)
        {
            _objectIds.Clear();
        }

        if (_typeIds.Count > 0)
        {
            _typeIds.Clear();
        }

        PrivilegedRoot = null;
        ClosureUses = null;
        SkippedClosureFields = null;
        CanCarryHandles = false;
        Handles = null;
        WrittenMethods = null;
        RecordsMethods = false;
        if (_buffer.Length > 1 << 20)
        {
            _buffer = new byte[256]; // do not pin a huge buffer to the thread forever
        }
    }

    /// <summary>Writes any value, with its runtime type when <typeparamref name="T"/> is not a value type.</summary>
    public void WriteValue<T>(T value)
    {
        if (typeof(T).IsValueType)
        {
            ConverterCache<T>.Instance.Write(this, value);
        }
        else
        {
            WriteReference(value);
        }
    }

    /// <summary>Writes the top-level value. A value type carries its type, exactly as it would boxed, so a reader expecting another type can tell.</summary>
    internal void WriteRoot<T>(T value)
    {
        if (typeof(T).IsValueType && default(T) is not null)
        {
            WriteTypeReference(typeof(T));
            ConverterCache<T>.Instance.Write(this, value);
        }
        else
        {
            WriteReference(value); // a Nullable<T> boxes to null or to its underlying value
        }
    }

    internal void WriteReference(object? value)
    {
        if (value is null)
        {
            WriteVarUInt(Wire.Null);
            return;
        }

        Type type = value.GetType();
        if (type == typeof(string))
        {
            WriteVarUInt(Wire.StringId);
            WriteStringBody(Unsafe.As<string>(value));
            return;
        }

        if (!RuntimeHelpers.TryEnsureSufficientExecutionStack())
        {
            // Each nested object is a level of recursion; overflowing the stack would end the whole process.
            throw new System.Runtime.Serialization.SerializationException(
                "The object graph is nested too deeply to serialize without overflowing the stack (a very long linked chain?); flatten it, for example into a list.");
        }

        ObjectConverter converter;
        if (type == _lastType)
        {
            converter = _lastConverter!;
        }
        else
        {
            converter = Converters.For(type);
            _lastType = type;
            _lastConverter = converter;
        }

        if (!type.IsValueType)
        {
            ref int id = ref CollectionsMarshal.GetValueRefOrAddDefault(_objectIds, value, out bool seen);
            if (seen)
            {
                WriteVarUInt(Wire.BackReference);
                WriteVarUInt((uint)id);
                return;
            }

            id = _objectIds.Count - 1;
        }

        WriteTypeReference(converter.WireType ?? type);
        converter.WriteObject(this, value);
    }

    internal void WriteTypeReference(Type type)
    {
        if (Wire.BuiltinIds.TryGetValue(type, out int id) || _typeIds.TryGetValue(type, out id))
        {
            WriteVarUInt((uint)id);
            return;
        }

        WriteVarUInt(Wire.InlineType);
        TypeShape shape = TypeShape.Of(type);
        WriteByte(shape.Kind);
        switch (shape.Kind)
        {
            case Wire.KindArray:
                WriteTypeReference(shape.Inner!);
                break;
            case Wire.KindMultiArray:
                WriteTypeReference(shape.Inner!);
                WriteVarUInt((uint)shape.Rank);
                break;
            case Wire.KindGeneric:
                WriteTypeReference(shape.Inner!);
                WriteVarUInt((uint)shape.Arguments.Length);
                foreach (Type argument in shape.Arguments)
                {
                    WriteTypeReference(argument);
                }

                break;
            default:
                WriteString(shape.AssemblyName);
                WriteString(shape.FullName);
                break;
        }

        _typeIds[type] = Wire.FirstDynamicId + _typeIds.Count;
    }

    /// <summary>Writes one byte.</summary>
    public void WriteByte(byte value)
    {
        if (_position >= _buffer.Length)
        {
            Grow(1);
        }

        _buffer[_position++] = value;
    }

    /// <summary>Writes a bool as one byte.</summary>
    public void WriteBoolean(bool value) => WriteByte(value ? (byte)1 : (byte)0);

    /// <summary>Writes a 32-bit integer, little-endian.</summary>
    public void WriteInt32(int value) => WriteRaw(value);

    /// <summary>Writes a 64-bit integer, little-endian.</summary>
    public void WriteInt64(long value) => WriteRaw(value);

    /// <summary>Writes a double, little-endian.</summary>
    public void WriteDouble(double value) => WriteRaw(value);

    /// <summary>Writes an unsigned integer in 1–10 bytes (LEB128).</summary>
    public void WriteVarUInt(ulong value)
    {
        if (_buffer.Length - _position < 10)
        {
            Grow(10);
        }

        while (value >= 0x80)
        {
            _buffer[_position++] = (byte)(value | 0x80);
            value >>= 7;
        }

        _buffer[_position++] = (byte)value;
    }

    /// <summary>Writes a string or null.</summary>
    public void WriteString(string? value)
    {
        if (value is null)
        {
            WriteVarUInt(0);
            return;
        }

        WriteVarUInt(1);
        WriteStringBody(value);
    }

    internal void WriteStringBody(string value)
    {
        WriteVarUInt((uint)value.Length);
        WriteSpan(MemoryMarshal.AsBytes(value.AsSpan()));
    }

    /// <summary>Writes a length-prefixed byte block.</summary>
    public void WriteBytes(ReadOnlySpan<byte> value)
    {
        WriteVarUInt((uint)value.Length);
        WriteSpan(value);
    }

    internal void WriteSpan(ReadOnlySpan<byte> value)
    {
        if (_buffer.Length - _position < value.Length)
        {
            Grow(value.Length);
        }

        value.CopyTo(_buffer.AsSpan(_position));
        _position += value.Length;
    }

    internal void WriteRaw<T>(T value)
    {
        int size = Unsafe.SizeOf<T>();
        if (_buffer.Length - _position < size)
        {
            Grow(size);
        }

        Unsafe.WriteUnaligned(ref _buffer[_position], value);
        _position += size;
    }

    internal void WriteGuid(Guid value)
    {
        if (_buffer.Length - _position < 16)
        {
            Grow(16);
        }

        value.TryWriteBytes(_buffer.AsSpan(_position));
        _position += 16;
    }

    internal void WriteInt32BigEndianAt(int offset, int value) => BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(offset), value);

    private void Grow(int needed)
    {
        int size = Math.Max(_buffer.Length * 2, _position + needed);
        if ((uint)size > (uint)Array.MaxLength)
        {
            size = Math.Max(_position + needed, Array.MaxLength);
        }

        Array.Resize(ref _buffer, size);
    }
}

/// <summary>How a type is written on the wire, worked out once per type (reflection allocates on every call).</summary>
internal sealed class TypeShape
{
    private static readonly ReadMostlyCache<Type, TypeShape> s_shapes = new();

    private TypeShape(byte kind) => Kind = kind;

    public byte Kind { get; }

    public Type? Inner { get; private init; }

    public Type[] Arguments { get; private init; } = [];

    public int Rank { get; private init; }

    public string? AssemblyName { get; private init; }

    public string? FullName { get; private init; }

    public static TypeShape Of(Type type) => s_shapes.TryGetValue(type, out TypeShape shape) ? shape : s_shapes.GetOrAdd(type, Create);

    private static TypeShape Create(Type type)
    {
        if (type.IsSZArray)
        {
            return new TypeShape(Wire.KindArray) { Inner = type.GetElementType() };
        }

        if (type.IsArray)
        {
            return new TypeShape(Wire.KindMultiArray) { Inner = type.GetElementType(), Rank = type.GetArrayRank() };
        }

        if (type.IsConstructedGenericType)
        {
            return new TypeShape(Wire.KindGeneric) { Inner = type.GetGenericTypeDefinition(), Arguments = type.GenericTypeArguments };
        }

        if (type.IsGenericParameter || type.IsPointer || type.IsByRef || type.IsFunctionPointer || type.FullName is null)
        {
            throw new CrossingException(type, "has no name another process can resolve");
        }

        return new TypeShape(Wire.KindNamed) { AssemblyName = type.Assembly.GetName().Name, FullName = type.FullName };
    }
}
