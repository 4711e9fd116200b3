using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Sharing;

/// <summary>
/// A <see cref="SharedMemory"/> crosses as its name and, where the channel carries handles (a child's start, a
/// connection), as its descriptor too: the receiver maps the very same block even if its name was unlinked meanwhile.
/// Elsewhere (a queue) it crosses by name and the receiver attaches, as Python pickles it.
/// </summary>
internal sealed class SharedMemoryConverter : ObjectConverter<SharedMemory>
{
    public override void Write(ObjectWriter writer, SharedMemory value)
    {
        if (value.IsClosed)
        {
            throw new CrossingException(typeof(SharedMemory), $"'{value.Name}' cannot cross a process boundary: it is closed");
        }

        writer.WriteString(value.Name);
        writer.WriteBoolean(writer.CanCarryHandles);
        if (writer.CanCarryHandles)
        {
            writer.WriteRegion(value.Region, typeof(SharedMemory));
        }
    }

    public override SharedMemory Read(ref ObjectReader reader)
    {
        string name = reader.ReadString() ?? "";
        SharedRegion region = reader.ReadBoolean() ? reader.ReadRegion() : SharedMemory.Attach(name);
        return new SharedMemory(name, region);
    }
}
