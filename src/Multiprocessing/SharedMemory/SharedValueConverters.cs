using Multiprocessing.Serialization;

namespace Multiprocessing.Sharing;

/// <summary>
/// A <see cref="SharedValue{T}"/> crosses as its lock (the same lock in every copy) and its memory's handle; the
/// receiver maps the same memory. Like Python's synchronized objects, only where handles travel: a child's start, a connection.
/// </summary>
internal sealed class SharedValueConverter<T> : ObjectConverter<SharedValue<T>>
    where T : unmanaged
{
    public override void Write(ObjectWriter writer, SharedValue<T> value)
    {
        writer.WriteValue<object?>(value.LockOrNull);
        writer.WriteRegion(value.Region, typeof(SharedValue<T>));
    }

    public override SharedValue<T> Read(ref ObjectReader reader)
    {
        var lk = reader.ReadValue<object?>() as ILock;
        return new SharedValue<T>(reader.ReadRegion(), lk);
    }
}

/// <summary>A <see cref="SharedArray{T}"/> crosses as its lock, its length and its memory's handle (see <see cref="SharedValueConverter{T}"/>).</summary>
internal sealed class SharedArrayConverter<T> : ObjectConverter<SharedArray<T>>
    where T : unmanaged
{
    public override void Write(ObjectWriter writer, SharedArray<T> value)
    {
        writer.WriteValue<object?>(value.LockOrNull);
        writer.WriteVarUInt((uint)value.Length);
        writer.WriteRegion(value.Region, typeof(SharedArray<T>));
    }

    public override SharedArray<T> Read(ref ObjectReader reader)
    {
        var lk = reader.ReadValue<object?>() as ILock;
        int length = checked((int)reader.ReadVarUInt());
        return new SharedArray<T>(reader.ReadRegion(), length, lk);
    }
}
