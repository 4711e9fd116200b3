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

        return null;
    }
}
