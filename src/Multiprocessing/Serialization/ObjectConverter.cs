namespace Multiprocessing.Serialization;

/// <summary>The untyped face of a converter, used where only the runtime type is known.</summary>
public abstract class ObjectConverter
{
    private protected ObjectConverter()
    {
    }

    /// <summary>The type this converter handles.</summary>
    public abstract Type Type { get; }

    internal abstract void WriteObject(ObjectWriter writer, object value);

    internal abstract object? ReadObject(ref ObjectReader reader);

    /// <summary>
    /// Why <paramref name="value"/> is left out of a closure field the lambda being written never reads (C# shares one
    /// closure among a scope's lambdas), or null to copy it anyway: values that would be refused (a stream, a thread…),
    /// and values that must not be duplicated into another process behind the program's back (a connection's handle).
    /// </summary>
    internal virtual string? ReasonToLeaveOutWhenUnread(ObjectWriter writer, object value) => null;

    /// <summary>
    /// The type written in place of the value's runtime type, or null for the runtime type itself: for values whose type
    /// exists only in this process (a proxy generated at run time), read back by the converter of the type written.
    /// </summary>
    internal virtual Type? WireType => null;
}

/// <summary>Writes and reads values of <typeparamref name="T"/>; subclass it to control how a type crosses a process.</summary>
/// <remarks>
/// Register a converter with <see cref="BinarySerializer.RegisterConverter{T}(ObjectConverter{T})"/> from a
/// <c>[ModuleInitializer]</c> (children do not run <c>Main</c>), or name it with <see cref="ObjectConverterAttribute"/> on the type.
/// A reference-type converter that can be part of a cycle calls <see cref="ObjectReader.Register(object)"/> as soon as it has created its object.
/// </remarks>
public abstract class ObjectConverter<T> : ObjectConverter
{
    /// <inheritdoc/>
    public sealed override Type Type => typeof(T);

    /// <summary>Writes <paramref name="value"/> (never null for reference types; nulls are handled by the caller).</summary>
    public abstract void Write(ObjectWriter writer, T value);

    /// <summary>Reads a value written by <see cref="Write"/>.</summary>
    public abstract T Read(ref ObjectReader reader);

    internal sealed override void WriteObject(ObjectWriter writer, object value) => Write(writer, (T)value);

    internal sealed override object? ReadObject(ref ObjectReader reader) => Read(ref reader);
}

/// <summary>Names the <see cref="ObjectConverter{T}"/> to use for the type it is placed on.</summary>
/// <param name="converterType">A converter type with a public parameterless constructor.</param>
[AttributeUsage(AttributeTargets.Class | AttributeTargets.Struct | AttributeTargets.Enum | AttributeTargets.Interface, Inherited = false)]
public sealed class ObjectConverterAttribute(Type converterType) : Attribute
{
    /// <summary>The converter type.</summary>
    public Type ConverterType { get; } = converterType;
}
