using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.Serialization;

namespace Multiprocessing.Serialization;

/// <summary>
/// Delegates: each invocation is sent as its method (declaring type, module version id, metadata token, generic
/// arguments) and its target object, which for a lambda is the closure holding the captured variables.
/// </summary>
internal sealed class DelegateConverter<T> : ObjectConverter<T>
    where T : Delegate
{
    public override void Write(ObjectWriter writer, T value)
    {
        Delegate[] invocations = value.GetInvocationList();
        writer.WriteVarUInt((uint)invocations.Length);
        foreach (Delegate invocation in invocations)
        {
            MethodInfo method = invocation.Method;
            if (method is DynamicMethod || method.DeclaringType is null || method.GetType().Name.Contains("RTDynamicMethod", StringComparison.Ordinal))
            {
                throw new CrossingException(typeof(T), "cannot cross a process boundary: it points at a dynamic method that exists only in this process");
            }

            try
            {
                writer.WriteTypeReference(method.DeclaringType);
            }
            catch (CrossingException ex)
            {
                ex.AddStep(MethodResolver.Describe(method));
                throw;
            }

            writer.WriteGuid(method.Module.ModuleVersionId);
            writer.WriteInt32(method.MetadataToken);
            Type[] generic = method.IsGenericMethod ? method.GetGenericArguments() : [];
            writer.WriteVarUInt((uint)generic.Length);
            foreach (Type argument in generic)
            {
                writer.WriteTypeReference(argument);
            }

            writer.WriteString(method.Name);
            writer.NoteMethod(typeof(T), method);
            HashSet<(Module, int)>? outerUses = writer.ClosureUses;
            try
            {
                object? target = invocation.Target;
                writer.ClosureUses = target is not null && ClosureAnalysis.IsClosure(target.GetType()) ? ClosureAnalysis.UsedFields(method) : null;
                ThrowIfNeededFieldWasSkipped(writer, target);
                writer.WriteValue(target);
            }
            catch (CrossingException ex)
            {
                ex.AddStep(MethodResolver.Describe(method));
                throw;
            }
            finally
            {
                writer.ClosureUses = outerUses;
            }
        }
    }

    /// <summary>A closure written earlier for another lambda may lack a field this lambda reads: then it fails as it would have.</summary>
    private static void ThrowIfNeededFieldWasSkipped(ObjectWriter writer, object? target)
    {
        if (target is null || writer.SkippedClosureFields is not { } skipped || !writer.HasWritten(target))
        {
            return;
        }

        foreach (KeyValuePair<object, List<((Module, int) Field, CrossingException Error)>> entry in skipped)
        {
            foreach (((Module, int) field, CrossingException error) in entry.Value)
            {
                if (writer.ClosureUses is null || writer.ClosureUses.Contains(field))
                {
                    throw error;
                }
            }
        }
    }

    public override T Read(ref ObjectReader reader)
    {
        ReaderState state = reader.State;
        int slot = state.PendingSlot; // this delegate's own slot, for references back to it from inside its target
        int count = reader.ReadLength(1);
        Delegate? result = null;
        for (int i = 0; i < count; i++)
        {
            Type declaring = reader.ReadTypeReference();
            Guid moduleVersion = reader.ReadGuid();
            int token = reader.ReadInt32();
            int genericCount = reader.ReadLength(1);
            var generic = new Type[genericCount];
            for (int g = 0; g < genericCount; g++)
            {
                generic[g] = reader.ReadTypeReference();
            }

            string name = reader.ReadString() ?? "";
            MethodInfo method = MethodResolver.Resolve(declaring, moduleVersion, token, generic, name);
            Delegate? early = null;
            object? created = null;
            Action<object>? onTargetRegistered = null;
            if (count == 1 && slot >= 0)
            {
                // A recursive lambda's closure holds the delegate itself: build and register the delegate as soon as its
                // target exists, before the target's fields (which refer back to it) are read.
                onTargetRegistered = target =>
                {
                    created = target;
                    early = Bind(declaring, method, target);
                    state.Objects[slot] = early;
                };
            }

            object? target = reader.ReadReference(onTargetRegistered);
            if (early is not null && !ReferenceEquals(created, target))
            {
                throw ObjectReader.Corrupt("a delegate target that changed while it was read");
            }

            result = Delegate.Combine(result, early ?? Bind(declaring, method, target));
        }

        return (T)(result ?? throw ObjectReader.Corrupt("a delegate with no methods"));
    }

    private static Delegate Bind(Type declaring, MethodInfo method, object? target)
    {
        try
        {
            return Delegate.CreateDelegate(typeof(T), target, method);
        }
        catch (ArgumentException ex)
        {
            throw new SerializationException($"Cannot rebuild a {TypeNames.Display(typeof(T))} over {TypeNames.Display(declaring)}.{method.Name}: {ex.Message}", ex);
        }
    }
}

/// <summary>Finds a method from its identity on the wire, and names methods for error messages.</summary>
internal static class MethodResolver
{
    // Per declaring type, a short list scanned by token: a (Type, int) or int key is a value-type generic instantiation
    // that no precompiled image holds, and JIT-compiling it cost every cold child milliseconds.
    private static readonly ReadMostlyCache<Type, MethodInfo[]> s_methods = new();

    public static MethodInfo Resolve(Type declaring, Guid moduleVersion, int token, Type[] generic, string name)
    {
        MethodInfo? method = null;
        if (s_methods.TryGetValue(declaring, out MethodInfo[] known))
        {
            foreach (MethodInfo candidate in known)
            {
                if (candidate.MetadataToken == token)
                {
                    method = candidate;
                    break;
                }
            }
        }

        if (method is null)
        {
            Module module = declaring.Module;
            if (module.ModuleVersionId != moduleVersion)
            {
                throw new SerializationException(
                    $"Method {TypeNames.Display(declaring)}.{name} comes from a different build of {module.Name} than the one loaded here.");
            }

            MethodBase? resolved;
            try
            {
                resolved = module.ResolveMethod(token);
            }
            catch (ArgumentException ex)
            {
                throw new SerializationException($"Method {TypeNames.Display(declaring)}.{name} could not be resolved: {ex.Message}", ex);
            }

            if (resolved is not MethodInfo info || info.Name != name)
            {
                throw ObjectReader.Corrupt($"a method token that does not name {name}");
            }

            if (declaring.IsConstructedGenericType)
            {
                info = (MethodInfo)MethodBase.GetMethodFromHandle(info.MethodHandle, declaring.TypeHandle)!;
            }

            method = info;
            s_methods.Set(declaring, known is null ? [info] : [.. known, info]);
        }

        if (generic.Length > 0)
        {
            if (!method.IsGenericMethodDefinition || method.GetGenericArguments().Length != generic.Length)
            {
                throw ObjectReader.Corrupt($"generic arguments for the non-generic method {name}");
            }

            try
            {
                return method.MakeGenericMethod(generic);
            }
            catch (ArgumentException ex)
            {
                throw new SerializationException($"Cannot instantiate {name} with the given type arguments: {ex.Message}", ex);
            }
        }

        return method;
    }

    public static string Describe(MethodInfo method)
    {
        string name = method.Name;
        int local = name.LastIndexOf(">g__", StringComparison.Ordinal);
        int lambda = name.LastIndexOf(">b__", StringComparison.Ordinal);
        int end = Math.Max(local, lambda);
        if (name.StartsWith('<') && end > 0)
        {
            // "<Outer>b__0_1", "<<Main>$>b__0_0" (top-level statements), "<Outer>g__Name|0_0".
            string outer = name[1..end].Replace("<", "", StringComparison.Ordinal).Replace(">$", "", StringComparison.Ordinal).Replace(">", "", StringComparison.Ordinal);
            return local == end
                ? $"local function {name[(end + 4)..].Split('|')[0]} in {outer}"
                : $"lambda in {outer}";
        }

        return $"delegate to {TypeNames.Display(method.DeclaringType!)}.{name}";
    }
}
