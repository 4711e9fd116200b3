using Multiprocessing.Serialization;

namespace Multiprocessing.Sharing;

/// <summary>A <see cref="ShareableList"/> crosses as its block (see <see cref="SharedMemoryConverter"/>); the receiver reads the layout from it.</summary>
internal sealed class ShareableListConverter : ObjectConverter<ShareableList>
{
    public override void Write(ObjectWriter writer, ShareableList value) => writer.WriteValue(value.Shm);

    public override ShareableList Read(ref ObjectReader reader) => ShareableList.Over(reader.ReadValue<SharedMemory>());
}
