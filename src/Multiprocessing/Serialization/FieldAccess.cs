using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using System.Runtime.Serialization;

namespace Multiprocessing.Serialization;

/// <summary>Fast typed getters and setters for fields, including private and readonly ones.</summary>
internal static class FieldAccess
{
    public static Func<object, TField> Getter<TField>(FieldInfo field)
    {
        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            return owner => (TField)field.GetValue(owner)!;
        }

        var method = new DynamicMethod("get_" + field.Name, typeof(TField), [typeof(object)], typeof(FieldAccess).Module, skipVisibility: true);
        ILGenerator il = method.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        if (field.DeclaringType!.IsValueType)
        {
            il.Emit(OpCodes.Unbox, field.DeclaringType);
        }

        il.Emit(OpCodes.Ldfld, field);
        il.Emit(OpCodes.Ret);
        return method.CreateDelegate<Func<object, TField>>();
    }

    public static Action<object, TField> Setter<TField>(FieldInfo field)
    {
        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            return (owner, value) => field.SetValue(owner, value);
        }

        var method = new DynamicMethod("set_" + field.Name, null, [typeof(object), typeof(TField)], typeof(FieldAccess).Module, skipVisibility: true);
        ILGenerator il = method.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        if (field.DeclaringType!.IsValueType)
        {
            il.Emit(OpCodes.Unbox, field.DeclaringType);
        }

        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Stfld, field);
        il.Emit(OpCodes.Ret);
        return method.CreateDelegate<Action<object, TField>>();
    }

    /// <summary>Instance fields of <paramref name="type"/> and its bases up to (not including) <paramref name="stopAt"/>, minus [NonSerialized] ones.</summary>
    public static List<FieldInfo> InstanceFields(Type type, Type? stopAt)
    {
        var fields = new List<FieldInfo>();
        for (Type? t = type; t is not null && t != stopAt && t != typeof(object); t = t.BaseType)
        {
            foreach (FieldInfo field in t.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
#pragma warning disable SYSLIB0050 // [NonSerialized] is still the way a field opts out of being copied.
                bool skipped = (field.Attributes & FieldAttributes.NotSerialized) != 0;
#pragma warning restore SYSLIB0050
                if (!skipped)
                {
                    fields.Add(field);
                }
            }
        }

        return fields;
    }

    /// <summary>The [OnDeserialized] methods of <paramref name="type"/> and its bases, base first (the order BinaryFormatter used).</summary>
    public static MethodInfo[] OnDeserializedCallbacks(Type type)
    {
        var callbacks = new List<MethodInfo>();
        if (type.Name.StartsWith('<'))
        {
            return []; // compiler-generated closures have none, and reading attributes costs a cold child a millisecond
        }

        for (Type? t = type; t is not null && t != typeof(object); t = t.BaseType)
        {
            int insertAt = 0;
            foreach (MethodInfo method in t.GetMethods(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            {
                if (method.ReturnType == typeof(void) && method.GetParameters() is [{ ParameterType: var parameter }] && parameter == typeof(StreamingContext)
                    && method.IsDefined(typeof(OnDeserializedAttribute), inherit: false))
                {
                    callbacks.Insert(insertAt++, method);
                }
            }
        }

        return [.. callbacks];
    }

    /// <summary>How a field reads in an error path: closure captures by their variable name, auto-properties by their property.</summary>
    public static string Describe(FieldInfo field)
    {
        string name = field.Name;
        string owner = field.DeclaringType?.Name ?? "";
        bool closure = owner.Contains("DisplayClass", StringComparison.Ordinal) || owner.StartsWith("<>c", StringComparison.Ordinal);
        if (name == "<>4__this")
        {
            return "captured 'this'";
        }

        if (name.StartsWith("CS$<>8__locals", StringComparison.Ordinal))
        {
            return "enclosing closure";
        }

        if (name.StartsWith('<') && name.EndsWith(">k__BackingField", StringComparison.Ordinal))
        {
            return $"property '{name[1..name.IndexOf('>', StringComparison.Ordinal)]}'";
        }

        if (name.StartsWith("<>3__", StringComparison.Ordinal))
        {
            name = name[5..];
        }

        return closure ? $"closure field '{name}'" : $"field '{name}'";
    }

    /// <summary>Builds the per-field serializers for the given fields.</summary>
    public static FieldSerializer[] Serializers(List<FieldInfo> fields)
    {
        var serializers = new FieldSerializer[fields.Count];
        for (int i = 0; i < serializers.Length; i++)
        {
            FieldInfo field = fields[i];
            if (field.FieldType.IsPointer || field.FieldType.IsFunctionPointer || field.FieldType.IsByRef)
            {
                serializers[i] = new PointerFieldSerializer(field);
                continue;
            }

            // Parameterless construction plus Initialize: Activator with arguments costs a cold child over a millisecond.
            var serializer = (FieldSerializer)Activator.CreateInstance(typeof(FieldSerializer<>).MakeGenericType(field.FieldType))!;
            serializer.Initialize(field);
            serializers[i] = serializer;
        }

        return serializers;
    }
}

/// <summary>A pointer-typed field: it can never cross.</summary>
internal sealed class PointerFieldSerializer(FieldInfo pointerField) : FieldSerializer
{
    public override FieldInfo Field => pointerField;

    public override string Description => FieldAccess.Describe(pointerField);

    public override void Write(ObjectWriter writer, object owner)
    {
        var ex = new CrossingException(pointerField.FieldType, NonCrossable.Reason(pointerField.FieldType)!);
        ex.AddStep(FieldAccess.Describe(pointerField));
        throw ex;
    }

    public override void Read(ref ObjectReader reader, object owner)
        => throw new System.Runtime.Serialization.SerializationException($"Field '{pointerField.Name}' of {TypeNames.Display(pointerField.DeclaringType!)} is a pointer and cannot be read.");
}

/// <summary>Writes and reads one field of an object whose type is known only at run time.</summary>
internal abstract class FieldSerializer
{
    public virtual void Initialize(FieldInfo field)
    {
    }

    public abstract FieldInfo Field { get; }

    public abstract string Description { get; }

    public abstract void Write(ObjectWriter writer, object owner);

    public abstract void Read(ref ObjectReader reader, object owner);
}

internal sealed class FieldSerializer<TField> : FieldSerializer
{
    // Emitting IL costs more than a few reflective calls, and a child often reads a type once: start reflective.
    private const int CallsBeforeEmitting = 8;

    private FieldInfo _field = null!;
    private string _description = "";
    private string? _rejection;
    private Func<object, TField>? _get;
    private Action<object, TField>? _set;
    private int _reads;
    private int _writes;

    public override FieldInfo Field => _field;

    public override string Description => _description;

    public override void Initialize(FieldInfo field)
    {
        _field = field;
        _description = FieldAccess.Describe(field);
        _rejection = NonCrossable.Reason(field.FieldType) is { } reason && field.FieldType.IsValueType ? reason : null;
    }

    public override void Write(ObjectWriter writer, object owner)
    {
        try
        {
            if (_rejection is not null)
            {
                throw new CrossingException(_field.FieldType, _rejection);
            }

            TField value;
            if (_get is { } get)
            {
                value = get(owner);
            }
            else
            {
                if (++_writes == CallsBeforeEmitting)
                {
                    _get = FieldAccess.Getter<TField>(_field);
                }

                value = (TField)_field.GetValue(owner)!;
            }

            writer.WriteValue(value);
        }
        catch (CrossingException ex)
        {
            ex.AddStep(_description);
            throw;
        }
    }

    public override void Read(ref ObjectReader reader, object owner)
    {
        TField value = reader.ReadValue<TField>();
        if (_set is { } set)
        {
            set(owner, value);
            return;
        }

        if (++_reads == CallsBeforeEmitting)
        {
            _set = FieldAccess.Setter<TField>(_field);
        }

        _field.SetValue(owner, value);
    }
}

/// <summary>Classes and structs in general: every instance field, private and readonly ones included.</summary>
internal sealed class FieldsConverter<T> : ObjectConverter<T>
{
    private static readonly bool s_closure = ClosureAnalysis.IsClosure(typeof(T));

    private readonly FieldSerializer[] _fields = FieldAccess.Serializers(FieldAccess.InstanceFields(typeof(T), null));

    // Types rebuild what they do not serialize (a native handle, a cache) in their [OnDeserialized] methods; skipping
    // them leaves such objects broken, and some (CompareInfo, inside culture-aware string comparers) crash the process when used.
    private readonly MethodInfo[] _onDeserialized = FieldAccess.OnDeserializedCallbacks(typeof(T));

    public override void Write(ObjectWriter writer, T value)
    {
        if (typeof(T).IsValueType && _fields.Length == 0)
        {
            // Collections check that the data holds at least a byte per item before allocating, so a struct whose
            // fields are all [NonSerialized] still writes one (otherwise a list of them would be refused as corrupt).
            writer.WriteByte(0);
            return;
        }

        object boxed = value!;
        if (s_closure)
        {
            WriteClosure(writer, boxed);
            return;
        }

        foreach (FieldSerializer field in _fields)
        {
            field.Write(writer, boxed);
        }
    }

    /// <summary>Each closure field is preceded by a presence byte: a refused value the lambda never reads is left out.</summary>
    private void WriteClosure(ObjectWriter writer, object closure)
    {
        foreach (FieldSerializer field in _fields)
        {
            if (field.Field.Name.StartsWith("<>9__", StringComparison.Ordinal))
            {
                // The compiler caches a delegate it made from this closure here and re-creates it when the field is null;
                // sending it would only send the closure a second time through itself.
                writer.WriteByte(0);
                continue;
            }

            if (writer.ClosureUses is { } uses && !uses.Contains(ClosureAnalysis.Key(field.Field))
                && field.Field.GetValue(closure) is { } value && Converters.For(value.GetType()).ReasonToLeaveOutWhenUnread(writer, value) is { } reason)
            {
                var error = new CrossingException(value.GetType(), reason);
                error.AddStep(field.Description);
                writer.SkippedClosureFields ??= new(ReferenceEqualityComparer.Instance);
                if (!writer.SkippedClosureFields.TryGetValue(closure, out var skipped))
                {
                    writer.SkippedClosureFields[closure] = skipped = [];
                }

                skipped.Add((ClosureAnalysis.Key(field.Field), error));
                writer.WriteByte(0);
                continue;
            }

            writer.WriteByte(1);
            field.Write(writer, closure);
        }
    }

    public override T Read(ref ObjectReader reader)
    {
        object instance = RuntimeHelpers.GetUninitializedObject(typeof(T));
        if (!typeof(T).IsValueType)
        {
            reader.Register(instance);
        }
        else if (_fields.Length == 0)
        {
            reader.ReadByte(); // the placeholder written above
        }

        foreach (FieldSerializer field in _fields)
        {
            if (!s_closure || reader.ReadByte() == 1)
            {
                field.Read(ref reader, instance);
            }
        }

        foreach (MethodInfo callback in _onDeserialized)
        {
            callback.Invoke(instance, BindingFlags.DoNotWrapExceptions, null, [default(StreamingContext)], null);
        }

        return (T)instance;
    }
}
