namespace Multiprocessing.Serialization;

/// <summary>
/// Constants of the binary format. A reference-typed slot starts with a varint tag: 0 null, 1 back-reference (then
/// the object's id), 2 a type defined inline (then its definition and the value), 3–63 a built-in type id, 64 and up a
/// type defined earlier in the same message. Value-typed slots carry no tag, except the message's top-level value, which is
/// always written as a reference-typed slot (a value type there carries its type tag, as if boxed). Numbers are little-endian, strings UTF-16.
/// </summary>
internal static class Wire
{
    public const byte FormatVersion = 0xB1;

    public const ulong Null = 0;
    public const ulong BackReference = 1;
    public const ulong InlineType = 2;
    public const ulong StringId = 3;
    public const int FirstDynamicId = 64;

    public const byte KindNamed = 0;
    public const byte KindGeneric = 1;
    public const byte KindArray = 2;
    public const byte KindMultiArray = 3;

    private const int LastBuiltinId = 46;

    // Entries are made on first use: loading every built-in type up front costs a cold child milliseconds.
    private static readonly TypeEntry?[] s_builtinEntries = new TypeEntry?[FirstDynamicId];

    /// <summary>The built-in type with id <paramref name="id"/> (3 is string, as <see cref="StringId"/>); ids are part of the format: append only.</summary>
    private static Type? TypeOf(ulong id) => id switch
    {
        3 => typeof(string),
        4 => typeof(object),
        5 => typeof(bool),
        6 => typeof(char),
        7 => typeof(sbyte),
        8 => typeof(byte),
        9 => typeof(short),
        10 => typeof(ushort),
        11 => typeof(int),
        12 => typeof(uint),
        13 => typeof(long),
        14 => typeof(ulong),
        15 => typeof(float),
        16 => typeof(double),
        17 => typeof(decimal),
        18 => typeof(DateTime),
        19 => typeof(DateTimeOffset),
        20 => typeof(TimeSpan),
        21 => typeof(Guid),
        22 => typeof(byte[]),
        23 => typeof(int[]),
        24 => typeof(long[]),
        25 => typeof(double[]),
        26 => typeof(string[]),
        27 => typeof(object[]),
        28 => typeof(Half),
        29 => typeof(Int128),
        30 => typeof(UInt128),
        31 => typeof(DateOnly),
        32 => typeof(TimeOnly),
        33 => typeof(char[]),
        34 => typeof(List<int>),
        35 => typeof(List<string>),
        36 => typeof(List<object>),
        37 => typeof(Dictionary<string, object>),
        38 => typeof(Dictionary<string, string>),
        39 => typeof(Type).GetType(),
        40 => typeof(RemoteException),
        41 => typeof(Action),
        42 => typeof(Func<Task>),
        43 => typeof(List<double>),
        44 => typeof(List<long>),
        45 => typeof(bool[]),
        46 => typeof(float[]),
        _ => null,
    };

    /// <summary>Built-in type → id, for writers (built on first write).</summary>
    public static Dictionary<Type, int> BuiltinIds => WriterTable.Ids;

    private static class WriterTable
    {
        public static readonly Dictionary<Type, int> Ids = Build();

        private static Dictionary<Type, int> Build()
        {
            var ids = new Dictionary<Type, int>();
            for (ulong id = StringId; id <= LastBuiltinId; id++)
            {
                ids[TypeOf(id)!] = (int)id;
            }

            return ids;
        }
    }

    public static TypeEntry? Builtin(ulong id)
    {
        if (id >= FirstDynamicId)
        {
            return null;
        }

        if (s_builtinEntries[id] is { } entry)
        {
            return entry;
        }

        return TypeOf(id) is { } type ? s_builtinEntries[id] = new TypeEntry(type) : null;
    }
}
