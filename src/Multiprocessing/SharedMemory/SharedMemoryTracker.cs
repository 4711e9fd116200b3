using System.Runtime.InteropServices;
using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Sharing;

/// <summary>
/// The helper process that removes the named blocks a process created once nobody uses them any more, however that
/// process ends (normally, by an exception, by SIGKILL). Started on the first tracked block a process creates; it
/// learns of each block (as a descriptor of its own) over a pipe, and the end of that pipe tells it its creator is gone.
/// </summary>
/// <remarks>
/// It then takes each block's exclusive <c>flock</c>: every process that maps a block holds a shared one, which the
/// kernel drops when that process ends, so the exclusive lock is granted exactly when the last user is gone. It removes
/// the name only if it still names the same file. A block its creator unlinked is forgotten at once.
/// </remarks>
internal sealed class SharedMemoryTracker : Process
{
    private readonly Connection _creator;

    public SharedMemoryTracker(Connection creator)
        : base("SharedMemoryTracker", daemon: false, uncounted: true) => _creator = creator;

    internal override bool OutlivesParent => true;

    protected override void Run()
    {
        var blocks = new Dictionary<long, TrackerMessage>();
        try
        {
            while (true)
            {
                TrackerMessage message = _creator.Recv<TrackerMessage>();
                if (message.Block is not null)
                {
                    blocks[message.Id] = message;
                }
                else if (blocks.Remove(message.Id, out TrackerMessage? forgotten))
                {
                    forgotten.Block?.Dispose();
                }
            }
        }
        catch (Exception ex) when (ex is EndOfStreamException or IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            // The creator has ended (or closed the pipe as it exited): its blocks now live only as long as their users.
        }
        finally
        {
            _creator.Dispose();
            foreach (TrackerMessage block in blocks.Values)
            {
                RemoveWhenUnused(block);
            }
        }
    }

    private static void RemoveWhenUnused(TrackerMessage block)
    {
        try
        {
            SharedBlockUsage.WaitUntilUnused(block.Block!);
            _ = SharedBlockUsage.UnlinkIfSame(block.Name, block.Block!);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: could not remove shared memory '{block.Name}': {ex.Message}");
        }
        finally
        {
            block.Block!.Dispose();
        }
    }
}

/// <summary>What a creator tells its tracker: a block to watch (with a descriptor for it), or one to forget (no descriptor).</summary>
internal sealed class TrackerMessage(long id, string name, SafeHandle? block)
{
    public long Id { get; } = id;

    public string Name { get; } = name;

    /// <summary>In the tracker, an open file of its own: its exclusive lock waits for the users' shared ones.</summary>
    public SafeHandle? Block { get; } = block;
}

/// <summary>Sends the block's descriptor beside the message; the tracker reopens the file, so its lock is its own.</summary>
internal sealed class TrackerMessageConverter : ObjectConverter<TrackerMessage>
{
    public override void Write(ObjectWriter writer, TrackerMessage value)
    {
        writer.WriteInt64(value.Id);
        writer.WriteString(value.Name);
        writer.WriteBoolean(value.Block is not null);
        if (value.Block is not null)
        {
            writer.WriteVarUInt((uint)writer.AddHandle(value.Block, typeof(SharedMemory)));
        }
    }

    public override TrackerMessage Read(ref ObjectReader reader)
    {
        long id = reader.ReadInt64();
        string name = reader.ReadString() ?? "";
        SafeHandle? block = reader.ReadBoolean() ? SharedBlockUsage.ReopenAndClose(reader.TakeHandle((int)reader.ReadVarUInt())) : null;
        return new TrackerMessage(id, name, block);
    }
}
