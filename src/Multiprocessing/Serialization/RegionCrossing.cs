using Multiprocessing.Platform;

namespace Multiprocessing.Serialization;

/// <summary>How a shared-memory region crosses inside an object: its handle travels beside the message, and the receiver maps the same memory.</summary>
internal static class RegionCrossing
{
    /// <summary>Writes <paramref name="region"/> as a handle; <paramref name="owner"/> is the type named if it cannot cross (a disposed object, plain bytes).</summary>
    public static void WriteRegion(this ObjectWriter writer, SharedRegion region, Type owner)
    {
        if (region.IsDisposed)
        {
            throw new CrossingException(owner, "cannot cross a process boundary: it has been disposed");
        }

        writer.WriteVarUInt((uint)writer.AddHandle(region.Handle, owner));
    }

    /// <summary>Maps the region written by <see cref="WriteRegion"/>; call it after reading every other field, so a failure cannot leak the handle.</summary>
    public static SharedRegion ReadRegion(this ref ObjectReader reader)
        => SharedMemoryBackend.Current.Adopt(reader.TakeHandle((int)reader.ReadVarUInt()));
}
