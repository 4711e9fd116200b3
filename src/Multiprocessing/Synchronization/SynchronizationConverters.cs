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

        if (type == typeof(Semaphore))
        {
            return new SemaphoreConverter();
        }

        if (type == typeof(BoundedSemaphore))
        {
            return new BoundedSemaphoreConverter();
        }

        if (type == typeof(Event))
        {
            return new EventConverter();
        }

        if (type == typeof(Condition))
        {
            return new ConditionConverter();
        }

        if (type == typeof(Barrier))
        {
            return new BarrierConverter();
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

    private sealed class SemaphoreConverter : ObjectConverter<Semaphore>
    {
        public override void Write(ObjectWriter writer, Semaphore value) => writer.WriteRegion(value.Memory.Region, typeof(Semaphore));

        public override Semaphore Read(ref ObjectReader reader) => new(PrimitiveMemory.Adopt(reader.ReadRegion(), Semaphore.Size, typeof(Semaphore)));
    }

    private sealed class BoundedSemaphoreConverter : ObjectConverter<BoundedSemaphore>
    {
        public override void Write(ObjectWriter writer, BoundedSemaphore value) => writer.WriteRegion(value.Memory.Region, typeof(BoundedSemaphore));

        public override BoundedSemaphore Read(ref ObjectReader reader) => new(PrimitiveMemory.Adopt(reader.ReadRegion(), Semaphore.Size, typeof(BoundedSemaphore)));
    }

    private sealed class EventConverter : ObjectConverter<Event>
    {
        public override void Write(ObjectWriter writer, Event value) => writer.WriteRegion(value.Memory.Region, typeof(Event));

        public override Event Read(ref ObjectReader reader) => new(PrimitiveMemory.Adopt(reader.ReadRegion(), Event.Size, typeof(Event)));
    }

    /// <summary>A condition crosses with its lock (the same lock on both sides).</summary>
    private sealed class ConditionConverter : ObjectConverter<Condition>
    {
        public override void Write(ObjectWriter writer, Condition value)
        {
            writer.WriteValue(value.Lock);
            writer.WriteRegion(value.Memory.Region, typeof(Condition));
        }

        public override Condition Read(ref ObjectReader reader)
        {
            ILock lk = reader.ReadValue<ILock>() ?? throw new InvalidDataException("A Condition arrived without its lock.");
            return new Condition(lk, PrimitiveMemory.Adopt(reader.ReadRegion(), Condition.RegionSize, typeof(Condition)));
        }
    }

    /// <summary>A barrier crosses with its condition (and so its lock), its action and its default timeout.</summary>
    private sealed class BarrierConverter : ObjectConverter<Barrier>
    {
        public override void Write(ObjectWriter writer, Barrier value)
        {
            writer.WriteValue(value.Action);
            writer.WriteBoolean(value.DefaultTimeout.HasValue);
            writer.WriteInt64(value.DefaultTimeout.GetValueOrDefault().Ticks);
            writer.WriteValue(value.Condition);
            writer.WriteRegion(value.Memory.Region, typeof(Barrier));
        }

        public override Barrier Read(ref ObjectReader reader)
        {
            Action? action = reader.ReadValue<Action?>();
            bool hasTimeout = reader.ReadBoolean();
            long ticks = reader.ReadInt64();
            Condition condition = reader.ReadValue<Condition>() ?? throw new InvalidDataException("A Barrier arrived without its condition.");
            if (condition.Lock is not Lock)
            {
                throw new InvalidDataException("A Barrier's condition must be over a Lock.");
            }

            PrimitiveMemory memory = PrimitiveMemory.Adopt(reader.ReadRegion(), Barrier.Size, typeof(Barrier));
            return new Barrier(condition, memory, action, hasTimeout ? TimeSpan.FromTicks(ticks) : null);
        }
    }
}
