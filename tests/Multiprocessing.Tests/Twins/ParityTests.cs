using System.Reflection;
using System.Text;

namespace Multiprocessing.Tests.Twins;

/// <summary>
/// The drift guard: every type a program uses through <c>using mp = Multiprocessing;</c> has a twin in
/// <c>Multiprocessing.Dummy</c> with the same public (and protected) members — names, parameter names and types,
/// optional arguments, return types, static-ness — where <c>Multiprocessing.X</c> reads <c>Multiprocessing.Dummy.X</c>,
/// the same base type and the same public interfaces. Switching the <c>using</c> line must keep a program compiling.
/// </summary>
public sealed class ParityTests
{
    private const string Real = "Multiprocessing";
    private const string Dummy = "Multiprocessing.Dummy";

    /// <summary>The types the issue names (and what their members hand out), by name with generic arity.</summary>
    private static readonly string[] Twinned =
    [
        "Process", "Process`1", "Process`2", "Process`3", "Process`4",
        "Queue`1", "SimpleQueue`1", "JoinableQueue`1",
        "Pipe", "Connection",
        "Lock", "RLock", "Semaphore", "BoundedSemaphore", "Condition", "Event", "Barrier",
        "SharedValue`1", "SharedArray`1", "SharedMemory",
        "Manager", "ListProxy`1",
        "Pool", "AsyncResult`1",
    ];

    /// <summary>
    /// Types both namespaces share rather than twin: the exceptions (so one <c>catch</c> serves both; a Dummy type of
    /// the same name would be a different type that a <c>catch</c> of the real one misses) and the interfaces both
    /// implement. A program reaches them with <c>using Multiprocessing;</c> beside the <c>mp</c> alias.
    /// </summary>
    private static readonly string[] Shared =
    [
        "QueueEmptyException", "QueueFullException", "BufferTooShortException", "BrokenBarrierException",
        "RemoteException", "ProcessException",
        "IQueue`1", "IJoinableQueue`1", "IConnection", "ILock", "ISemaphore", "ICondition", "IEvent", "IBarrier",
        "ISharedValue`1", "ISharedArray`1", "LockScope", "NamedPipeEndPoint",
    ];

    /// <summary>
    /// Public types of <c>Multiprocessing</c> that have no thread twin, with the reason. Every other public type there
    /// must be twinned or shared, so a new one cannot be added without deciding which.
    /// </summary>
    private static readonly Dictionary<string, string> NotTwinned = new(StringComparer.Ordinal)
    {
        ["Listener"] = "not in the issue's list: Python's dummy.connection has an in-memory Listener/Client; ours are sockets between processes, which a thread program can use as they are",
        ["Client"] = "as Listener",
        ["ShareableList"] = "Python's multiprocessing.shared_memory, which dummy does not mirror; it works as it is from threads",
        ["SharedMemoryManager"] = "as ShareableList",
    };

    /// <summary>
    /// Members of a process type that the thread twin deliberately lacks, with the reason. Keep this short: a member
    /// that can be given a meaning on threads belongs in the twin, even if that meaning is "throws with a reason".
    /// </summary>
    /// <remarks>
    /// Empty today, and meant to stay short. Nothing is impossible outright on threads: <c>Terminate</c>/<c>Kill</c> exist
    /// and throw <see cref="PlatformNotSupportedException"/> (a thread cannot be killed); <c>Sentinel</c> is an eventfd
    /// set when the thread ends; the remote-manager members serve through the process manager's own in-process
    /// server. An entry is keyed by the line this test prints, e.g.
    /// <c>["Process: public Terminate() : System.Void"] = "why threads cannot have it"</c>.
    /// </remarks>
    private static readonly Dictionary<string, string> MissingOnThreads = new(StringComparer.Ordinal)
    {
    };

    /// <summary>Members only the thread twin has, with the reason (each would break a program switched back to processes).</summary>
    private static readonly Dictionary<string, string> OnlyOnThreads = new(StringComparer.Ordinal)
    {
    };

    private static readonly Assembly Library = typeof(Process).Assembly;

    [Fact]
    public void Every_twinned_type_has_the_same_members_on_threads()
    {
        var missing = new List<string>();
        var extra = new List<string>();
        foreach (string name in Twinned)
        {
            Type real = Library.GetType($"{Real}.{name}", throwOnError: true)!;
            Type? twin = Library.GetType($"{Dummy}.{name}");
            if (twin is null || !twin.IsPublic)
            {
                missing.Add($"{name}: no public Multiprocessing.Dummy.{name}");
                continue;
            }

            HashSet<string> realMembers = Members(real, isTwin: false);
            HashSet<string> twinMembers = Members(twin, isTwin: true);
            missing.AddRange(realMembers.Except(twinMembers).Select(m => $"{name}: {m}"));
            extra.AddRange(twinMembers.Except(realMembers).Select(m => $"{name}: {m}"));
        }

        Report("missing on threads", Unexplained(missing, MissingOnThreads));
        Report("only on threads", Unexplained(extra, OnlyOnThreads));
    }

    [Fact]
    public void Every_allowance_is_still_needed()
    {
        var missing = new HashSet<string>(StringComparer.Ordinal);
        var extra = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in Twinned)
        {
            Type real = Library.GetType($"{Real}.{name}", throwOnError: true)!;
            Type twin = Library.GetType($"{Dummy}.{name}", throwOnError: true)!;
            HashSet<string> realMembers = Members(real, isTwin: false);
            HashSet<string> twinMembers = Members(twin, isTwin: true);
            missing.UnionWith(realMembers.Except(twinMembers).Select(m => $"{name}: {m}"));
            extra.UnionWith(twinMembers.Except(realMembers).Select(m => $"{name}: {m}"));
        }

        string[] stale = [.. MissingOnThreads.Keys.Where(key => !missing.Contains(key)), .. OnlyOnThreads.Keys.Where(key => !extra.Contains(key))];
        Report("allowed but no longer different (remove the allowance)", stale);
    }

    [Fact]
    public void Twins_have_the_same_shape_base_type_and_interfaces()
    {
        var differences = new List<string>();
        foreach (string name in Twinned)
        {
            Type real = Library.GetType($"{Real}.{name}", throwOnError: true)!;
            Type twin = Library.GetType($"{Dummy}.{name}", throwOnError: true)!;
            if (real.IsGenericTypeDefinition && Constraints(real.GetGenericArguments()) != Constraints(twin.GetGenericArguments()))
            {
                differences.Add($"{name}: constraints {Constraints(real.GetGenericArguments())} on processes, {Constraints(twin.GetGenericArguments())} on threads");
            }

            if (Shape(real) != Shape(twin))
            {
                differences.Add($"{name}: {Shape(real)} on processes, {Shape(twin)} on threads");
            }

            string realBase = real.BaseType is null ? "" : Describe(real.BaseType, isTwin: false);
            string twinBase = twin.BaseType is null ? "" : Describe(twin.BaseType, isTwin: true);
            bool twinExtendsReal = twin.BaseType is { } b && (b.IsGenericType ? b.GetGenericTypeDefinition() : b) == real; // AsyncResult<T>
            if (realBase != twinBase && !twinExtendsReal)
            {
                differences.Add($"{name}: derives from {realBase} on processes, {twinBase} on threads");
            }

            IEnumerable<string> realInterfaces = real.GetInterfaces().Where(i => i.IsVisible).Select(i => Describe(i, isTwin: false));
            HashSet<string> twinInterfaces = twin.GetInterfaces().Where(i => i.IsVisible).Select(i => Describe(i, isTwin: true)).ToHashSet();
            differences.AddRange(realInterfaces.Where(i => !twinInterfaces.Contains(i)).Select(i => $"{name}: does not implement {i} on threads"));
        }

        Report("different", differences);
    }

    [Fact]
    public void Every_public_type_of_the_process_namespace_is_twinned_shared_or_explained()
    {
        string[] unexplained = [.. Library.GetExportedTypes()
            .Where(t => t.Namespace == Real && !t.IsNested)
            .Select(t => t.Name)
            .Where(name => Array.IndexOf(Twinned, name) < 0 && Array.IndexOf(Shared, name) < 0 && !NotTwinned.ContainsKey(name))
            .Order(StringComparer.Ordinal)];
        Report("public types of Multiprocessing neither twinned, shared nor explained", unexplained);
        Report("explained but no longer public in Multiprocessing", [.. NotTwinned.Keys.Where(name => Library.GetType($"{Real}.{name}") is not { IsPublic: true })]);
    }

    [Fact]
    public void Exceptions_and_interfaces_are_shared_not_twinned()
    {
        foreach (string name in Shared)
        {
            Type? real = Library.GetType($"{Real}.{name}");
            Assert.True(real is { IsPublic: true }, $"{Real}.{name} is not a public type");
            Assert.True(Library.GetType($"{Dummy}.{name}") is null, $"{Dummy}.{name} would shadow the shared {Real}.{name} under 'using mp = {Dummy};'");
        }
    }

    /// <summary>The members a program can use: public ones, and protected ones a subclass can (Process.Run).</summary>
    private static HashSet<string> Members(Type type, bool isTwin)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.FlattenHierarchy;
        var result = new HashSet<string>(StringComparer.Ordinal);
        foreach (MemberInfo member in type.GetMembers(all))
        {
            if (member.DeclaringType == typeof(object) || member is Type)
            {
                continue;
            }

            string? signature = member switch
            {
                ConstructorInfo c when Usable(c) && !c.IsStatic => $"{Access(c)}.ctor({Parameters(c, isTwin)})",
                MethodInfo m when Usable(m) && !m.IsSpecialName => $"{Access(m)}{Static(m)}{Virtual(m)}{m.Name}{Arity(m)}({Parameters(m, isTwin)}) : {Describe(m.ReturnType, isTwin)}",
                PropertyInfo p => Property(p, isTwin),
                EventInfo e when e.AddMethod is { } add && Usable(add) => $"{Access(add)}{Static(add)}event {e.Name} : {Describe(e.EventHandlerType!, isTwin)}",
                FieldInfo f when (f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly) && !f.IsSpecialName => $"{(f.IsPublic ? "public " : "protected ")}{(f.IsStatic ? "static " : "")}field {f.Name} : {Describe(f.FieldType, isTwin)}",
                _ => null,
            };
            if (signature is not null)
            {
                result.Add(signature);
            }
        }

        return result;
    }

    private static bool Usable(MethodBase method) => method.IsPublic || method.IsFamily || method.IsFamilyOrAssembly;

    private static string Access(MethodBase method) => method.IsPublic ? "public " : "protected ";

    private static string Static(MethodBase method) => method.IsStatic ? "static " : "";

    private static string Virtual(MethodInfo method) => method.IsVirtual && !method.IsFinal && !method.DeclaringType!.IsInterface ? "virtual " : "";

    private static string Arity(MethodInfo method) => method.IsGenericMethodDefinition ? $"`{method.GetGenericArguments().Length}{Constraints(method.GetGenericArguments())}" : "";

    /// <summary>The generic constraints (a stricter twin would reject a program the process type accepts): <c>&lt;class&gt;</c>, <c>&lt;unmanaged&gt;</c>, ….</summary>
    private static string Constraints(Type[] parameters)
    {
        string[] each = [.. parameters.Select(p =>
        {
            var parts = new List<string>();
            GenericParameterAttributes special = p.GenericParameterAttributes & GenericParameterAttributes.SpecialConstraintMask;
            if (special.HasFlag(GenericParameterAttributes.ReferenceTypeConstraint))
            {
                parts.Add("class");
            }

            if (p.CustomAttributes.Any(a => a.AttributeType.Name == "IsUnmanagedAttribute"))
            {
                parts.Add("unmanaged");
            }
            else if (special.HasFlag(GenericParameterAttributes.NotNullableValueTypeConstraint))
            {
                parts.Add("struct");
            }
            else if (special.HasFlag(GenericParameterAttributes.DefaultConstructorConstraint))
            {
                parts.Add("new()");
            }

            parts.AddRange(p.GetGenericParameterConstraints().Where(c => c != typeof(ValueType)).Select(c => Describe(c, isTwin: false)));
            return string.Join(" ", parts);
        })];
        return each.All(string.IsNullOrEmpty) ? "" : "<" + string.Join(", ", each) + ">";
    }

    private static string? Property(PropertyInfo property, bool isTwin)
    {
        MethodInfo? get = property.GetMethod is { } g && Usable(g) ? g : null;
        MethodInfo? set = property.SetMethod is { } s && Usable(s) ? s : null;
        MethodInfo? any = get ?? set;
        if (any is null)
        {
            return null;
        }

        string index = property.GetIndexParameters() is { Length: > 0 } parameters
            ? "[" + string.Join(", ", parameters.Select(p => Parameter(p, isTwin))) + "]"
            : "";
        string accessors = (get is null ? "" : Access(get) + "get; ") + (set is null ? "" : Access(set) + "set; ");
        return $"{Static(any)}{Virtual(any)}property {property.Name}{index} : {Describe(property.PropertyType, isTwin)} {{ {accessors}}}";
    }

    private static string Parameters(MethodBase method, bool isTwin) => string.Join(", ", method.GetParameters().Select(p => Parameter(p, isTwin)));

    private static string Parameter(ParameterInfo parameter, bool isTwin)
    {
        var text = new StringBuilder();
        if (parameter.IsDefined(typeof(ParamArrayAttribute)))
        {
            text.Append("params ");
        }

        text.Append(parameter.IsOut ? "out " : parameter.ParameterType.IsByRef ? "ref " : "");
        text.Append(Describe(parameter.ParameterType, isTwin)).Append(' ').Append(parameter.Name);
        if (parameter.HasDefaultValue)
        {
            text.Append(" = ").Append(parameter.DefaultValue is null ? "default" : Convert.ToString(parameter.DefaultValue, System.Globalization.CultureInfo.InvariantCulture));
        }

        return text.ToString();
    }

    /// <summary>
    /// A type's name as the process namespace spells it: a thread twin reads as the process type it stands for, while
    /// a process type used by a thread twin (where its own twin was due) stays marked as the process type.
    /// </summary>
    private static string Describe(Type type, bool isTwin)
    {
        if (type.IsByRef)
        {
            return Describe(type.GetElementType()!, isTwin);
        }

        if (type.IsArray)
        {
            return Describe(type.GetElementType()!, isTwin) + "[" + new string(',', type.GetArrayRank() - 1) + "]";
        }

        if (type.IsPointer)
        {
            return Describe(type.GetElementType()!, isTwin) + "*";
        }

        if (type.IsGenericParameter)
        {
            return (type.DeclaringMethod is null ? "!" : "!!") + type.GenericParameterPosition;
        }

        if (type.IsGenericType && !type.IsGenericTypeDefinition)
        {
            return Describe(type.GetGenericTypeDefinition(), isTwin) + "<" + string.Join(", ", type.GetGenericArguments().Select(a => Describe(a, isTwin))) + ">";
        }

        string name = type.IsNested ? Describe(type.DeclaringType!, isTwin) + "+" + type.Name : $"{type.Namespace}.{type.Name}";
        if (type.Assembly == Library && !type.IsNested && Array.IndexOf(Twinned, type.Name) >= 0)
        {
            if (type.Namespace == Dummy)
            {
                return $"{Real}.{type.Name}";
            }

            if (type.Namespace == Real && isTwin)
            {
                return $"{Real}.{type.Name} (the process type, on threads)";
            }
        }

        return name;
    }

    /// <summary>What a program can do with the type; a class without a public or protected constructor cannot be derived from, sealed or not.</summary>
    private static string Shape(Type type)
    {
        bool derivable = !type.IsSealed && type.GetConstructors(BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance).Any(Usable);
        return type.IsAbstract && type.IsSealed ? "static class" : type.IsValueType ? "struct" : type.IsInterface ? "interface" : !derivable ? "sealed class" : type.IsAbstract ? "abstract class" : "class";
    }

    private static void Report(string what, IReadOnlyCollection<string> found)
    {
        if (found.Count > 0)
        {
            Assert.Fail($"{found.Count} {what}:{Environment.NewLine}{string.Join(Environment.NewLine, found)}");
        }
    }

    private static List<string> Unexplained(IEnumerable<string> found, Dictionary<string, string> allowed)
        => [.. found.Where(member => !allowed.ContainsKey(member)).Order(StringComparer.Ordinal)];
}
