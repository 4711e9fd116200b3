using System.Reflection;
using System.Runtime.CompilerServices;

namespace Multiprocessing.Serialization;

/// <summary>Picks and caches the converter for each type.</summary>
internal static class Converters
{
    private static readonly ReadMostlyCache<Type, ObjectConverter> s_cache = new();
    private static readonly ReadMostlyCache<Type, ObjectConverter> s_registered = new();
    private static readonly List<Func<Type, ObjectConverter?>> s_providers = [];
    private static readonly object s_yes = new(), s_no = new();
    private static readonly ReadMostlyCache<Type, object> s_rawCopyable = new(); // s_yes or s_no: a bool value would be a generic instantiation every cold child JITs

    public static ObjectConverter For(Type type) => s_cache.TryGetValue(type, out ObjectConverter converter) ? converter : s_cache.GetOrAdd(type, Create);

    public static void Register(Type type, ObjectConverter converter)
    {
        if (s_cache.ContainsKey(type) && !s_registered.ContainsKey(type))
        {
            throw new InvalidOperationException($"A converter for {TypeNames.Display(type)} must be registered before the type is first serialized.");
        }

        s_registered.Set(type, converter);
        s_cache.Set(type, converter);
    }

    /// <summary>Lets a higher layer claim types it knows how to carry (processes, connections, locks…).</summary>
    public static void AddProvider(Func<Type, ObjectConverter?> provider)
    {
        lock (s_providers)
        {
            s_providers.Add(provider);
        }
    }

    private static ObjectConverter Create(Type type)
    {
        if (s_registered.TryGetValue(type, out ObjectConverter registered))
        {
            return registered;
        }

        // Reading custom attributes costs a cold child about a millisecond: skip types that cannot carry ours.
        bool mayCarryAttribute = !type.Name.StartsWith('<') && type.Assembly != typeof(object).Assembly && type.Assembly != typeof(Converters).Assembly;
        if (mayCarryAttribute && type.GetCustomAttribute<ObjectConverterAttribute>() is { } attribute)
        {
            return FromAttribute(type, attribute.ConverterType);
        }

        lock (s_providers)
        {
            foreach (Func<Type, ObjectConverter?> provider in s_providers)
            {
                if (provider(type) is { } provided)
                {
                    return provided;
                }
            }
        }

        if (NonCrossable.Reason(type) is { } reason)
        {
            return Make(typeof(RejectConverter<>), type, reason);
        }

        if (type == typeof(string))
        {
            return new StringConverter();
        }

        if (typeof(Type).IsAssignableFrom(type))
        {
            return Make(typeof(TypeValueConverter<>), type);
        }

        if (IsRawCopyable(type))
        {
            return Make(typeof(RawConverter<>), type);
        }

        if (Nullable.GetUnderlyingType(type) is { } underlying)
        {
            return Make(typeof(NullableConverter<>), underlying);
        }

        if (type.IsSZArray)
        {
            return Make(typeof(ArrayConverter<>), type.GetElementType()!);
        }

        if (type.IsArray)
        {
            var multi = (IRankedConverter)Activator.CreateInstance(typeof(MultiArrayConverter<>).MakeGenericType(type.GetElementType()!))!;
            multi.Rank = type.GetArrayRank();
            return (ObjectConverter)multi;
        }

        if (typeof(Delegate).IsAssignableFrom(type))
        {
            // The targets of most starts and tasks, built without reflection, which a cold child pays for.
            return type == typeof(Action) ? new DelegateConverter<Action>()
                : type == typeof(Func<Task>) ? new DelegateConverter<Func<Task>>()
                : Make(typeof(DelegateConverter<>), type);
        }

        if (typeof(Exception).IsAssignableFrom(type))
        {
            return Make(typeof(ExceptionConverter<>), type);
        }

        if (type.IsConstructedGenericType)
        {
            Type definition = type.GetGenericTypeDefinition();
            Type[] arguments = type.GenericTypeArguments;
            Type? collection = definition == typeof(List<>) ? typeof(ListConverter<>)
                : definition == typeof(Dictionary<,>) ? typeof(DictionaryConverter<,>)
                : definition == typeof(HashSet<>) ? typeof(HashSetConverter<>)
                : definition == typeof(System.Collections.Generic.Queue<>) ? typeof(QueueConverter<>)
                : definition == typeof(Stack<>) ? typeof(StackConverter<>)
                : definition.FullName == "System.Collections.Concurrent.ConcurrentDictionary`2" ? typeof(ConcurrentDictionaryConverter<,>)
                : null;
            if (collection is not null)
            {
                return (ObjectConverter)Activator.CreateInstance(collection.MakeGenericType(arguments))!;
            }
        }

        if (type.IsAbstract || type.IsInterface || type.IsByRefLike || type.ContainsGenericParameters)
        {
            return Make(typeof(RejectConverter<>), type, "has no concrete shape to copy");
        }

        if (HasFinalizer(type))
        {
            // A finalizer means a native resource; a copy made field by field would release (or crash on) it twice.
            return Make(typeof(RejectConverter<>), type, "cannot cross a process boundary: it has a finalizer, so it owns a resource of this process (register a converter for it)");
        }

        if (type.IsValueType && RuntimeHelpers.SizeOf(type.TypeHandle) > TypeResolver.MaximumValueTypeSize)
        {
            return Make(typeof(RejectConverter<>), type, $"is a value type larger than {TypeResolver.MaximumValueTypeSize / 1024} KiB (pass it in an array or a class)");
        }

        return Make(typeof(FieldsConverter<>), type);
    }

    private static ObjectConverter FromAttribute(Type type, Type converterType)
    {
        object? instance = Activator.CreateInstance(converterType);
        if (instance is not ObjectConverter converter || converter.Type != type)
        {
            throw new InvalidOperationException($"{converterType} named by [ObjectConverter] on {TypeNames.Display(type)} is not an ObjectConverter<{TypeNames.Display(type)}>.");
        }

        return converter;
    }

    private static ObjectConverter Make(Type generic, Type argument) => (ObjectConverter)Activator.CreateInstance(generic.MakeGenericType(argument))!;

    private static ObjectConverter Make(Type generic, Type argument, string reason)
    {
        // Parameterless construction plus a setter: Activator with arguments costs a cold child over a millisecond.
        var converter = (IReasonedConverter)Activator.CreateInstance(generic.MakeGenericType(argument))!;
        converter.Reason = reason;
        return (ObjectConverter)converter;
    }

    private static bool HasFinalizer(Type type)
    {
        for (Type? t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            if (t.GetMethod("Finalize", BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.DeclaredOnly, Type.EmptyTypes) is not null)
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>True for value types that hold no references and no pointers: their bytes are their value.</summary>
    public static bool IsRawCopyable(Type type)
        => s_rawCopyable.GetOrAdd(type, static t => t.IsValueType && !t.IsByRefLike && IsPlainData(t) ? s_yes : s_no) == s_yes;

    /// <summary>True when every instance field, recursively, is a primitive or enum that is not a pointer: no references, no handles.</summary>
    private static bool IsPlainData(Type type)
    {
        if (type == typeof(IntPtr) || type == typeof(UIntPtr) || type.IsPointer || type.IsFunctionPointer || !type.IsValueType)
        {
            return false;
        }

        if (type.IsPrimitive || type.IsEnum)
        {
            return true;
        }

        foreach (FieldInfo field in type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic))
        {
            if (field.FieldType != type && !IsPlainData(field.FieldType))
            {
                return false;
            }
        }

        return true;
    }
}

/// <summary>The converter for statically known value types, resolved once per type.</summary>
internal static class ConverterCache<T>
{
    public static readonly ObjectConverter<T> Instance = (ObjectConverter<T>)Converters.For(typeof(T));
}

/// <summary>Types whose instances only make sense inside the process that made them.</summary>
/// <remarks>Matched by the full names of a type and its bases, so checking a type never loads the assemblies the rules name.</remarks>
internal static class NonCrossable
{
    private const string Handle = "cannot cross a process boundary: it wraps an OS handle of this process";
    private const string Threads = "cannot cross a process boundary: it is tied to this process's threads";
    private const string Metadata = "cannot cross a process boundary: it is runtime metadata of this process";

    private static readonly Dictionary<string, string> s_rules = new(StringComparer.Ordinal)
    {
        ["System.IO.Stream"] = Handle,
        ["System.IO.TextReader"] = Handle,
        ["System.IO.TextWriter"] = Handle,
        ["System.Runtime.InteropServices.SafeHandle"] = Handle,
        ["System.Threading.WaitHandle"] = Handle,
        ["System.Net.Sockets.Socket"] = Handle,
        ["System.IO.FileSystemWatcher"] = Handle,
        ["System.Diagnostics.Process"] = Handle,
        ["System.Threading.Thread"] = Threads,
        ["System.Threading.Tasks.Task"] = Threads,
        ["System.Threading.Tasks.TaskScheduler"] = Threads,
        ["System.Threading.ExecutionContext"] = Threads,
        ["System.Threading.SynchronizationContext"] = Threads,
        ["System.Threading.CancellationTokenSource"] = Threads,
        ["System.Threading.CancellationToken"] = Threads,
        ["System.Threading.CancellationTokenRegistration"] = Threads,
        ["System.Threading.Timer"] = Threads,
        ["System.Threading.Lock"] = Threads,
        ["System.Threading.SemaphoreSlim"] = Threads,
        ["System.Threading.ManualResetEventSlim"] = Threads,
        ["System.Threading.ReaderWriterLockSlim"] = Threads,
        ["System.Threading.CountdownEvent"] = Threads,
        ["System.Threading.Barrier"] = Threads,
        ["System.Threading.ThreadLocal`1"] = Threads,
        ["System.Threading.AsyncLocal`1"] = Threads,
        ["System.Reflection.Assembly"] = Metadata,
        ["System.Reflection.Module"] = Metadata,
        ["System.AppDomain"] = "cannot cross a process boundary: it is this process's runtime",
        ["Multiprocessing.Pool"] = "cannot cross a process boundary: a pool is driven by the process that made it (submit work from there)",
        ["Multiprocessing.AsyncResult`1"] = "cannot cross a process boundary: it completes in the process that submitted the work",
        ["Multiprocessing.Manager"] = "cannot cross a process boundary: it owns its server (hand the other process the proxies it made, or Manager.Connect there)",
    };

    public static string? Reason(Type type)
    {
        if (type == typeof(IntPtr) || type == typeof(UIntPtr) || type.IsPointer || type.IsFunctionPointer)
        {
            return "cannot cross a process boundary: it is a native pointer or handle";
        }

        if (typeof(MemberInfo).IsAssignableFrom(type) && !typeof(Type).IsAssignableFrom(type))
        {
            return Metadata;
        }

        for (Type? t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            string? name = t.IsConstructedGenericType ? t.GetGenericTypeDefinition().FullName : t.FullName;
            if (name is not null && s_rules.TryGetValue(name, out string? reason))
            {
                return reason;
            }
        }

        return null;
    }
}
