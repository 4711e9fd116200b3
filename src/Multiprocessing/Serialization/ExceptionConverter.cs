using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;

namespace Multiprocessing.Serialization;

/// <summary>
/// Exceptions: message, HResult, source, stack trace (restored as a remote stack trace), inner exception, and the
/// fields of every class between <see cref="Exception"/> and the concrete type. <see cref="Exception.Data"/> is not carried.
/// </summary>
internal sealed class ExceptionConverter<T> : ObjectConverter<T>
    where T : Exception
{
    private static readonly FieldInfo? s_message = Field("_message");
    private static readonly FieldInfo? s_inner = Field("_innerException");
    private static readonly FieldInfo? s_hresult = Field("_HResult");
    private static readonly FieldInfo? s_source = Field("_source");

    private readonly FieldSerializer[] _fields = FieldAccess.Serializers(FieldAccess.InstanceFields(typeof(T), typeof(Exception)));

    private static FieldInfo? Field(string name) => typeof(Exception).GetField(name, BindingFlags.Instance | BindingFlags.NonPublic);

    public override void Write(ObjectWriter writer, T value)
    {
        writer.WriteString(s_message?.GetValue(value) as string ?? value.Message);
        writer.WriteInt32(value.HResult);
        writer.WriteString(s_source?.GetValue(value) as string);
        writer.WriteString(value.StackTrace);
        foreach (FieldSerializer field in _fields)
        {
            field.Write(writer, value);
        }

        try
        {
            writer.WriteValue(value.InnerException);
        }
        catch (Serialization.CrossingException ex)
        {
            ex.AddStep("inner exception");
            throw;
        }
    }

    public override T Read(ref ObjectReader reader)
    {
        var exception = (T)RuntimeHelpers.GetUninitializedObject(typeof(T));
        reader.Register(exception);
        s_message?.SetValue(exception, reader.ReadString());
        s_hresult?.SetValue(exception, reader.ReadInt32());
        s_source?.SetValue(exception, reader.ReadString());
        string? stackTrace = reader.ReadString();
        foreach (FieldSerializer field in _fields)
        {
            field.Read(ref reader, exception);
        }

        s_inner?.SetValue(exception, reader.ReadValue<Exception?>());
        if (!string.IsNullOrEmpty(stackTrace))
        {
            ExceptionDispatchInfo.SetRemoteStackTrace(exception, stackTrace);
        }

        return exception;
    }
}
