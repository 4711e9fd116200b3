using Multiprocessing.Platform;

namespace Multiprocessing.Synchronization;

/// <summary>
/// The small anonymous shared region holding one primitive's state. Anonymous (memfd on Linux): nothing is ever left in
/// the file system, however its users end; it reaches other processes only as a handle inside a message.
/// </summary>
internal sealed unsafe class PrimitiveMemory : IDisposable
{
    private SharedRegion? _region;
    private byte* _pointer;

    private PrimitiveMemory(SharedRegion region)
    {
        _region = region;
        _pointer = region.Pointer;
    }

    /// <summary>Serializes work done from the process-watch thread (owner death) against <see cref="Dispose"/>.</summary>
    public System.Threading.Lock Gate { get; } = new();

    /// <summary>The state; null once disposed.</summary>
    public byte* Pointer => _pointer;

    /// <summary>The region, to send to another process.</summary>
    public SharedRegion Region => _region ?? throw new ObjectDisposedException(nameof(SharedRegion));

    /// <summary>A zero-filled region of <paramref name="size"/> bytes.</summary>
    public static PrimitiveMemory Create(int size, string debugName)
        => new(SharedMemoryBackend.Current.CreateAnonymous(size, debugName));

    /// <summary>A region received from another process; refused if it is smaller than the primitive's state.</summary>
    public static PrimitiveMemory Adopt(SharedRegion region, int size, Type owner)
    {
        if (region.Length < size)
        {
            region.Dispose();
            throw new InvalidDataException($"The shared state received for a {owner.Name} is {region.Length} bytes; it needs {size}.");
        }

        return new PrimitiveMemory(region);
    }

    public void Dispose()
    {
        lock (Gate)
        {
            _pointer = null;
            _region?.Dispose();
            _region = null;
        }

        GC.SuppressFinalize(this);
    }

    /// <summary>An undisposed primitive nobody references any more still gives back its mapping.</summary>
    ~PrimitiveMemory() => _region?.Dispose();
}
