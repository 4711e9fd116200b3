using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>
/// A block of memory mapped into this process and shared with every process that maps the same OS object. The
/// handle (a memfd or a /dev/shm file on Linux) is what crosses to other processes; the mapping dies with the region.
/// </summary>
internal sealed unsafe class SharedRegion : IDisposable
{
    private byte* _pointer;

    internal SharedRegion(SafeHandle handle, byte* pointer, long length)
    {
        Handle = handle;
        _pointer = pointer;
        Length = length;
    }

    /// <summary>The OS object behind the mapping; it travels beside a message to map the same memory elsewhere.</summary>
    public SafeHandle Handle { get; }

    /// <summary>The mapping's size in bytes.</summary>
    public long Length { get; }

    /// <summary>The start of the mapping; valid until <see cref="Dispose"/>.</summary>
    public byte* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(SharedRegion));

    /// <summary>True once unmapped.</summary>
    public bool IsDisposed => _pointer == null;

    /// <summary>The mapping as a span (regions beyond 2 GiB expose their first 2 GiB).</summary>
    public Span<byte> Span => new(Pointer, (int)Math.Min(Length, int.MaxValue));

    /// <summary>Unmaps the memory and closes the handle; other processes' mappings are unaffected.</summary>
    public void Dispose()
    {
        byte* pointer = _pointer;
        _pointer = null;
        if (pointer != null)
        {
            SharedMemoryBackend.Current.Unmap(pointer, Length);
        }

        Handle.Dispose();
    }
}

/// <summary>Creates, names, maps and removes shared memory.</summary>
internal unsafe interface ISharedMemoryBackend
{
    /// <summary>
    /// A zero-filled region with no name: nothing is left behind in the file system, whatever way its users end. It
    /// reaches other processes only as a handle (through a child's start request or a connection).
    /// </summary>
    SharedRegion CreateAnonymous(long size, string debugName);

    /// <summary>Maps the region behind a handle received from another process (the handle is adopted).</summary>
    SharedRegion Adopt(int handle);

    /// <summary>Creates a named, zero-filled region; <see cref="IOException"/> (file exists) when the name is taken.</summary>
    SharedRegion CreateNamed(string name, long size);

    /// <summary>Maps an existing named region; <see cref="FileNotFoundException"/> when there is none.</summary>
    SharedRegion OpenNamed(string name);

    /// <summary>Removes a name; mappings stay valid. False when there was no such name.</summary>
    bool Unlink(string name);

    /// <summary>Unmaps a mapping made by this backend.</summary>
    void Unmap(byte* pointer, long length);
}

/// <summary>The shared memory backend of this OS.</summary>
internal static class SharedMemoryBackend
{
    private static ISharedMemoryBackend? s_current;

    public static ISharedMemoryBackend Current => s_current ??= OperatingSystem.IsLinux()
        ? new Linux.LinuxSharedMemory()
        : throw new PlatformNotSupportedException(
            $"Multiprocessing has no shared memory backend for {RuntimeInformation.OSDescription} yet; only Linux is supported.");
}
