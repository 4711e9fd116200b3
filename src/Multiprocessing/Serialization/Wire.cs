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

    private static readonly Type[] s_builtins =
    [
        typeof(string), typeof(object), typeof(bool), typeof(char), typeof(sbyte), typeof(byte), typeof(short), typeof(ushort),
        typeof(int), typeof(uint), typeof(long), typeof(ulong), typeof(float), typeof(double), typeof(decimal), typeof(DateTime),
        typeof(DateTimeOffset), typeof(TimeSpan), typeof(Guid), typeof(byte[]), typeof(int[]), typeof(long[]), typeof(double[]), typeof(string[]),
        typeof(object[]), typeof(Half), typeof(Int128), typeof(UInt128), typeof(DateOnly), typeof(TimeOnly), typeof(char[]), typeof(List<int>),
        typeof(List<string>), typeof(List<object>), typeof(Dictionary<string, object>), typeof(Dictionary<string, string>), typeof(Type).GetType(),
        typeof(RemoteException), typeof(Action), typeof(Func<Task>), typeof(List<double>), typeof(List<long>), typeof(bool[]), typeof(float[]),
    ];

    private static readonly TypeEntry?[] s_builtinEntries = BuildEntries();

    /// <summary>Built-in type → id (ids start at 3, matching <see cref="StringId"/> for string).</summary>
    public static readonly Dictionary<Type, int> BuiltinIds = BuildIds();

    private static Dictionary<Type, int> BuildIds()
    {
        var ids = new Dictionary<Type, int>();
        for (int i = 0; i < s_builtins.Length; i++)
        {
            ids[s_builtins[i]] = (int)StringId + i;
        }

        return ids;
    }

    private static TypeEntry?[] BuildEntries()
    {
        var entries = new TypeEntry?[FirstDynamicId];
        for (int i = 0; i < s_builtins.Length; i++)
        {
            entries[(int)StringId + i] = new TypeEntry(s_builtins[i]);
        }

        return entries;
    }

    public static TypeEntry? Builtin(ulong id) => id < FirstDynamicId ? s_builtinEntries[id] : null;
}
