using Multiprocessing.Serialization;

namespace Multiprocessing.Sharing;

/// <summary>Claims the shared memory types for the serializer (registered by the library initializer).</summary>
internal static class SharedMemoryConverters
{
    public static ObjectConverter? Provide(Type type)
    {
        if (type == typeof(SharedMemory))
        {
            return new SharedMemoryConverter();
        }

        if (type == typeof(ShareableList))
        {
            return new ShareableListConverter();
        }

        if (type == typeof(TrackerMessage))
        {
            return new TrackerMessageConverter();
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(SharedValue<>))
        {
            return (ObjectConverter)Activator.CreateInstance(typeof(SharedValueConverter<>).MakeGenericType(type.GetGenericArguments()))!;
        }

        if (type.IsGenericType && type.GetGenericTypeDefinition() == typeof(SharedArray<>))
        {
            return (ObjectConverter)Activator.CreateInstance(typeof(SharedArrayConverter<>).MakeGenericType(type.GetGenericArguments()))!;
        }

        return null;
    }
}
