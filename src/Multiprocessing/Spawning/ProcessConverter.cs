using System.Runtime.CompilerServices;
using Multiprocessing.Serialization;

namespace Multiprocessing.Spawning;

/// <summary>
/// A <see cref="Process"/> crosses only as the payload of its own start: name, daemon flag, identity, target and the
/// fields its subclass declares. Anywhere else it is refused, as in Python.
/// </summary>
internal sealed class ProcessConverter<T> : ObjectConverter<T>
    where T : Process
{
    private readonly FieldSerializer[] _fields = FieldAccess.Serializers(FieldAccess.InstanceFields(typeof(T), typeof(Process)));

    public static ObjectConverter? Provide(Type type)
        => type == typeof(Process) ? new ProcessConverter<Process>() // every plain start: without reflection, which a cold child pays for
        : typeof(Process).IsAssignableFrom(type) ? (ObjectConverter)Activator.CreateInstance(typeof(ProcessConverter<>).MakeGenericType(type))! : null;

    private const string Refusal = "cannot cross a process boundary: it is a handle to a process of this one (pass what the other process needs instead)";

    internal override string? ReasonToLeaveOutWhenUnread(ObjectWriter writer, object value) => ReferenceEquals(writer.PrivilegedRoot, value) ? null : Refusal;

    public override void Write(ObjectWriter writer, T value)
    {
        if (!ReferenceEquals(writer.PrivilegedRoot, value))
        {
            throw new CrossingException(typeof(T), Refusal);
        }

        (string name, bool daemon, int[] identity, Delegate? target) = value.SnapshotForChild();
        writer.WriteString(name);
        writer.WriteBoolean(daemon);
        writer.WriteVarUInt((uint)identity.Length);
        foreach (int part in identity)
        {
            writer.WriteVarUInt((uint)part);
        }

        try
        {
            writer.WriteValue(target);
        }
        catch (CrossingException ex)
        {
            ex.AddStep("target");
            throw;
        }

        foreach (FieldSerializer field in _fields)
        {
            field.Write(writer, value);
        }
    }

    public override T Read(ref ObjectReader reader)
    {
        var process = (T)RuntimeHelpers.GetUninitializedObject(typeof(T));
        reader.Register(process);
        string name = reader.ReadString() ?? "";
        bool daemon = reader.ReadBoolean();
        var identity = new int[reader.ReadLength(1)];
        for (int i = 0; i < identity.Length; i++)
        {
            identity[i] = (int)reader.ReadVarUInt();
        }

        Delegate? target = reader.ReadValue<Delegate?>();
        process.InitializeInChild(name, daemon, identity, target);
        foreach (FieldSerializer field in _fields)
        {
            field.Read(ref reader, process);
        }

        return process;
    }
}
