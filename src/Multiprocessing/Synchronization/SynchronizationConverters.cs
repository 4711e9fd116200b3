using Multiprocessing.Serialization;

namespace Multiprocessing.Synchronization;

/// <summary>
/// The primitives cross to other processes as the handle of their shared region (beside the message, as connections
/// do); the receiver maps the same memory, so every copy is the same primitive.
/// </summary>
internal static class SynchronizationConverters
{
    public static ObjectConverter? Provide(Type type)
    {
        if (type == typeof(Lock))
        {
            return new LockConverter();
        }

        if (type == typeof(RLock))
        {
            return new RLockConverter();
        }

        return null;
    }

    private sealed class LockConverter : ObjectConverter<Lock>
    {
        public override void Write(ObjectWriter writer, Lock value) => writer.WriteRegion(value.Memory.Region, typeof(Lock));

        public override Lock Read(ref ObjectReader reader) => new(PrimitiveMemory.Adopt(reader.ReadRegion(), Lock.Size, typeof(Lock)));
    }

    private sealed class RLockConverter : ObjectConverter<RLock>
    {
        public override void Write(ObjectWriter writer, RLock value) => writer.WriteRegion(value.Memory.Region, typeof(RLock));

        public override RLock Read(ref ObjectReader reader) => new(PrimitiveMemory.Adopt(reader.ReadRegion(), RLock.Size, typeof(RLock)));
    }
}
