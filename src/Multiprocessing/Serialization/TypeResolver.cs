using System.Reflection;
using System.Runtime.Serialization;

namespace Multiprocessing.Serialization;

/// <summary>
/// Turns type names from the wire into types, only from assemblies that belong to this application (already loaded,
/// or listed among its trusted platform assemblies); anything else is a clear error, never an arbitrary load.
/// </summary>
internal static class TypeResolver
{
    // Keyed by strings, not a value tuple: a value-type key is a generic instantiation no precompiled image holds,
    // so every cold child would JIT the whole dictionary for it.
    private static readonly ReadMostlyCache<string, ReadMostlyCache<string, Type>> s_types = new(StringComparer.Ordinal);
    private static readonly ReadMostlyCache<string, Assembly> s_assemblies = new(StringComparer.Ordinal);
    private static readonly Lazy<HashSet<string>> s_applicationAssemblies = new(ReadTrustedAssemblyNames);

    /// <summary>Resolves a type named by spans over the message, allocating nothing once the type has been seen.</summary>
    public static Type Resolve(ReadOnlySpan<char> assemblyName, ReadOnlySpan<char> fullName)
    {
        if (s_types.TryGetValue(assemblyName, out ReadMostlyCache<string, Type> known) && known.TryGetValue(fullName, out Type type))
        {
            return type;
        }

        return Resolve(assemblyName.ToString(), fullName.ToString());
    }

    public static Type Resolve(string assemblyName, string fullName)
    {
        ReadMostlyCache<string, Type> types = s_types.GetOrAdd(assemblyName, static _ => new ReadMostlyCache<string, Type>(StringComparer.Ordinal));
        if (types.TryGetValue(fullName, out Type cached))
        {
            return cached;
        }

        Assembly assembly = ResolveAssembly(assemblyName);
        Type type = assembly.GetType(fullName, throwOnError: false, ignoreCase: false)
            ?? throw new SerializationException($"Type '{fullName}' was not found in assembly '{assemblyName}' (is this process running a different build?).");
        return types.GetOrAdd(fullName, _ => type);
    }

    private static Assembly ResolveAssembly(string name)
    {
        if (s_assemblies.TryGetValue(name, out Assembly known))
        {
            return known;
        }

        foreach (Assembly loaded in AppDomain.CurrentDomain.GetAssemblies())
        {
            // FullName is cached by the runtime; GetName() builds a new AssemblyName each time.
            string? full = loaded.FullName;
            if (!loaded.IsDynamic && full is not null && full.Length > name.Length && full[name.Length] == ',' && full.StartsWith(name, StringComparison.Ordinal))
            {
                return s_assemblies.GetOrAdd(name, _ => loaded);
            }
        }

        if (!s_applicationAssemblies.Value.Contains(name))
        {
            throw new SerializationException($"Assembly '{name}' is not part of this application, so types from it are not materialized.");
        }

        try
        {
            Assembly assembly = Assembly.Load(new AssemblyName(name));
            return s_assemblies.GetOrAdd(name, _ => assembly);
        }
        catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            throw new SerializationException($"Assembly '{name}' could not be loaded: {ex.Message}", ex);
        }
    }

    private static HashSet<string> ReadTrustedAssemblyNames()
    {
        var names = new HashSet<string>(StringComparer.Ordinal);
        if (AppContext.GetData("TRUSTED_PLATFORM_ASSEMBLIES") is string list)
        {
            foreach (string path in list.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
            {
                names.Add(Path.GetFileNameWithoutExtension(path));
            }
        }

        return names;
    }

    /// <summary>Largest value type a reader instantiates code for: a bigger one would overflow the stack of the methods that return it.</summary>
    public const int MaximumValueTypeSize = 64 * 1024;

    /// <summary>Refuses value types too large to pass by value; everything else is returned as is.</summary>
    public static Type EnsureMaterializable(Type type)
    {
        if (type.IsValueType && !type.ContainsGenericParameters && !type.IsByRefLike
            && System.Runtime.CompilerServices.RuntimeHelpers.SizeOf(type.TypeHandle) > MaximumValueTypeSize)
        {
            throw new SerializationException($"The data holds a {TypeNames.Display(type)}, a value type larger than {MaximumValueTypeSize / 1024} KiB; it is not read.");
        }

        return type;
    }

    public static Type MakeArray(Type element, int rank, bool sz)
    {
        if (rank is < 1 or > 32 || element.IsByRef || element.IsPointer || element == typeof(void) || element.IsByRefLike || element.ContainsGenericParameters)
        {
            throw ObjectReader.Corrupt($"an invalid array type of {element}");
        }

        return sz ? element.MakeArrayType() : element.MakeArrayType(rank);
    }

    private sealed record Instantiation(Type[] Arguments, Type Constructed);

    private static readonly ReadMostlyCache<Type, Instantiation[]> s_instantiations = new();

    /// <summary>Instantiates <paramref name="definition"/> over <paramref name="arguments"/>, remembering each instantiation so a repeat allocates nothing.</summary>
    public static Type MakeGeneric(Type definition, ReadOnlySpan<Type> arguments)
    {
        if (s_instantiations.TryGetValue(definition, out Instantiation[] known))
        {
            foreach (Instantiation candidate in known)
            {
                if (arguments.SequenceEqual(candidate.Arguments))
                {
                    return candidate.Constructed;
                }
            }
        }

        if (!definition.IsGenericTypeDefinition || definition.GetGenericArguments().Length != arguments.Length)
        {
            throw ObjectReader.Corrupt($"an invalid generic instantiation of {definition}");
        }

        Type constructed;
        Type[] copy = arguments.ToArray();
        try
        {
            constructed = definition.MakeGenericType(copy);
        }
        catch (ArgumentException ex)
        {
            throw new SerializationException($"Cannot instantiate {definition} with [{string.Join(", ", arguments.ToArray().Select(TypeNames.Display))}]: {ex.Message}", ex);
        }

        var added = new Instantiation(copy, constructed);
        s_instantiations.Set(definition, known is null ? [added] : [.. known, added]);
        return constructed;
    }
}

/// <summary>Readable type names for error messages (C#-like, without assembly qualification).</summary>
internal static class TypeNames
{
    public static string Display(Type type)
    {
        if (type.IsArray)
        {
            return Display(type.GetElementType()!) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        }

        if (!type.IsGenericType)
        {
            return (type.FullName ?? type.Name).Replace('+', '.');
        }

        string name = (type.GetGenericTypeDefinition().FullName ?? type.Name).Replace('+', '.');
        int tick = name.IndexOf('`', StringComparison.Ordinal);
        if (tick >= 0)
        {
            name = name[..tick];
        }

        return name + "<" + string.Join(", ", type.GetGenericArguments().Select(Display)) + ">";
    }
}
