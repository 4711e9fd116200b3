using System.Buffers;
using Multiprocessing.Platform;
using Multiprocessing.Sharing;

namespace Multiprocessing;

/// <summary>
/// A named block of shared memory (Python's <c>multiprocessing.shared_memory.SharedMemory</c>): created by one process,
/// attached by name from any other — Python's too, the names are <c>shm_open</c>'s — or handed to a child directly.
/// </summary>
/// <remarks>
/// <para>
/// Cleanup never leaks and never pulls a block from under its users: a block created with <c>track: true</c> (the
/// default) stays until <see cref="Unlink"/> is called, or else until its creator and every process that still maps it
/// have ended — normally, by an exception or killed — and is then removed by a small tracker process. A process that
/// only attached never removes a block (unlike CPython's resource tracker). <c>track: false</c> makes a block outlive
/// its creator until someone unlinks it.
/// </para>
/// <para>
/// <see cref="Span"/> and <see cref="Memory"/> point straight into the mapping: do not use them after <see cref="Dispose"/>.
/// </para>
/// </remarks>
public sealed class SharedMemory : IDisposable
{
    private const string NamePrefix = "psm_";

    private SharedRegion? _region;
    private RegionMemory? _memory;

    /// <summary>Creates a new block, or attaches to an existing one.</summary>
    /// <param name="name">The block's name; with <paramref name="create"/> and no name, a fresh one like Python's (<c>psm_</c> and 8 hex digits).</param>
    /// <param name="create">True to create a new block (zero-filled); false to attach to an existing one.</param>
    /// <param name="size">The size in bytes of a new block; ignored when attaching (the block's own size is used).</param>
    /// <param name="track">Whether a created block is removed once its creator and all its users have ended; false makes it outlive them until unlinked.</param>
    /// <exception cref="IOException">Creating a block whose name exists ("File exists").</exception>
    /// <exception cref="FileNotFoundException">Attaching to a name that does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive when creating, or negative.</exception>
    /// <exception cref="ArgumentException">Attaching without a name, or a name with '/' in it.</exception>
    public SharedMemory(string? name = null, bool create = false, int size = 0, bool track = true)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        if (!create)
        {
            Name = Bare(name ?? throw new ArgumentException("A name is needed to attach to an existing block; pass create: true to make a new one.", nameof(name)));
            _region = Attach(Name);
            return;
        }

        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        (Name, _region) = name is null ? CreateWithFreshName(size) : (Bare(name), SharedMemoryBackend.Current.CreateNamed(name, size));
        try
        {
            SharedBlockUsage.MarkInUse(_region);
            if (track)
            {
                _ = TrackedBlocks.Register(Name, _region);
            }
        }
        catch
        {
            _ = SharedMemoryBackend.Current.Unlink(Name);
            _region.Dispose();
            throw;
        }
    }

    /// <summary>A block that crossed into this process (by handle, or attached by name).</summary>
    internal SharedMemory(string name, SharedRegion region)
    {
        Name = name;
        _region = region;
    }

    /// <summary>The block's name, without the leading '/' (as Python reports it); other processes attach with it.</summary>
    public string Name { get; }

    /// <summary>The size in bytes (blocks beyond 2 GiB report <see cref="int.MaxValue"/>; see <see cref="Length"/>).</summary>
    public int Size => (int)Math.Min(Length, int.MaxValue);

    /// <summary>The size in bytes.</summary>
    public long Length => Region.Length;

    /// <summary>The block's bytes, in place (Python's <c>buf</c>).</summary>
    /// <exception cref="ObjectDisposedException">The block was closed in this process.</exception>
    public Span<byte> Span => Region.Span;

    /// <summary>The block's bytes as <see cref="Memory{T}"/>, for APIs that take it (streams, async code).</summary>
    public Memory<byte> Memory => (_memory ??= new RegionMemory(Region)).Memory;

    /// <summary>Whether <see cref="Close"/> or <see cref="Dispose"/> was called.</summary>
    public bool IsClosed => _region is null;

    internal SharedRegion Region => _region ?? throw new ObjectDisposedException(nameof(SharedMemory), $"Shared memory '{Name}' is closed in this process.");

    /// <summary>Unmaps the block from this process; the block itself stays for other processes (see <see cref="Unlink"/>).</summary>
    public void Close() => Dispose();

    /// <summary>Removes the block's name, so nobody can attach any more; mappings stay valid until closed. Call it once, from any process.</summary>
    /// <exception cref="FileNotFoundException">The name was already removed.</exception>
    public void Unlink()
    {
        TrackedBlocks.Forget(Name);
        if (!SharedMemoryBackend.Current.Unlink(Name))
        {
            throw new FileNotFoundException($"No such shared memory: '{Name}' (it was already unlinked).", Name);
        }
    }

    /// <summary>Unmaps the block from this process (as <see cref="Close"/>); it does not remove the block.</summary>
    public void Dispose()
    {
        SharedRegion? region = _region;
        _region = null;
        region?.Dispose();
    }

    /// <summary>Like Python's repr: <c>SharedMemory('name', size=N)</c>.</summary>
    public override string ToString() => $"SharedMemory('{Name}', size={(_region is null ? "closed" : Length.ToString(System.Globalization.CultureInfo.InvariantCulture))})";

    /// <summary>Maps an existing block and marks this process as one of its users.</summary>
    internal static SharedRegion Attach(string name)
    {
        SharedRegion region = SharedMemoryBackend.Current.OpenNamed(name);
        try
        {
            SharedBlockUsage.MarkInUse(region);

            // Opened just as its last user left and the tracker removed it: it is as good as missing.
            if (SharedBlockUsage.IsUnlinked(region.Handle))
            {
                throw new FileNotFoundException($"No such shared memory: '{name}' (it was removed as it was being opened).", name);
            }

            return region;
        }
        catch
        {
            region.Dispose();
            throw;
        }
    }

    private static (string Name, SharedRegion Region) CreateWithFreshName(int size)
    {
        while (true)
        {
            // Unpredictable enough: O_EXCL refuses a name someone took first. (The crypto generator's first use loads OpenSSL: ~6 ms.)
            string name = NamePrefix + Random.Shared.Next().ToString("x8", System.Globalization.CultureInfo.InvariantCulture);
            try
            {
                return (name, SharedMemoryBackend.Current.CreateNamed(name, size));
            }
            catch (IOException ex) when (ex is not FileNotFoundException && File.Exists("/dev/shm/" + name))
            {
                // Taken by chance: draw another, as Python does.
            }
        }
    }

    private static string Bare(string name) => name.StartsWith('/') ? name[1..] : name;

    /// <summary>Exposes a mapping as <see cref="Memory{T}"/>; the mapping is not pinned by it, so it must outlive its uses.</summary>
    private sealed unsafe class RegionMemory(SharedRegion region) : MemoryManager<byte>
    {
        public override Span<byte> GetSpan() => region.Span;

        public override MemoryHandle Pin(int elementIndex = 0) => new(region.Pointer + elementIndex);

        public override void Unpin()
        {
        }

        protected override void Dispose(bool disposing)
        {
        }
    }
}
