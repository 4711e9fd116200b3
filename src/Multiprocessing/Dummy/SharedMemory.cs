using System.Globalization;

namespace Multiprocessing.Dummy;

/// <summary>
/// A named block of bytes shared by threads, with the API of <see cref="Multiprocessing.SharedMemory"/>: the names live
/// in a registry of this process (nothing reaches <c>/dev/shm</c>), and the bytes are an ordinary array.
/// </summary>
/// <remarks><c>track</c> is accepted for parity and ignored: a block lives until it is unlinked and no longer referenced.</remarks>
public sealed class SharedMemory : IDisposable
{
    private const string NamePrefix = "psm_";
    private static readonly Dictionary<string, byte[]> s_blocks = new(StringComparer.Ordinal);
    private byte[]? _bytes;

    /// <summary>Creates a new block, or attaches to an existing one.</summary>
    /// <param name="name">The block's name; with <paramref name="create"/> and no name, a fresh one like Python's (<c>psm_</c> and 8 hex digits).</param>
    /// <param name="create">True to create a new block (zero-filled); false to attach to an existing one.</param>
    /// <param name="size">The size in bytes of a new block; ignored when attaching.</param>
    /// <param name="track">Ignored on threads (present so a program can switch namespaces).</param>
    /// <exception cref="IOException">Creating a block whose name exists ("File exists").</exception>
    /// <exception cref="FileNotFoundException">Attaching to a name that does not exist.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="size"/> is not positive when creating, or negative.</exception>
    /// <exception cref="ArgumentException">Attaching without a name, or a name with '/' in it.</exception>
    public SharedMemory(string? name = null, bool create = false, int size = 0, bool track = true)
    {
        _ = track;
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        lock (s_blocks)
        {
            if (!create)
            {
                Name = Bare(name ?? throw new ArgumentException("A name is needed to attach to an existing block; pass create: true to make a new one.", nameof(name)));
                _bytes = s_blocks.TryGetValue(Name, out byte[]? found) ? found : throw new FileNotFoundException($"No such shared memory: '{Name}'.", Name);
                return;
            }

            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
            if (name is null)
            {
                do
                {
                    name = NamePrefix + Random.Shared.Next().ToString("x8", CultureInfo.InvariantCulture);
                }
                while (s_blocks.ContainsKey(name));
            }

            Name = Bare(name);
            if (s_blocks.ContainsKey(Name))
            {
                throw new IOException($"File exists: shared memory '{Name}' already exists.");
            }

            _bytes = new byte[size];
            s_blocks.Add(Name, _bytes);
        }
    }

    /// <summary>The block's name; other threads attach with it.</summary>
    public string Name { get; }

    /// <summary>The size in bytes.</summary>
    public int Size => Bytes.Length;

    /// <summary>The size in bytes.</summary>
    public long Length => Bytes.Length;

    /// <summary>The block's bytes, in place (Python's <c>buf</c>).</summary>
    /// <exception cref="ObjectDisposedException">The block was closed through this object.</exception>
    public Span<byte> Span => Bytes;

    /// <summary>The block's bytes as <see cref="Memory{T}"/>.</summary>
    public Memory<byte> Memory => Bytes;

    /// <summary>Whether <see cref="Close"/> or <see cref="Dispose"/> was called.</summary>
    public bool IsClosed => _bytes is null;

    private byte[] Bytes => _bytes ?? throw new ObjectDisposedException(nameof(SharedMemory), $"Shared memory '{Name}' is closed.");

    /// <summary>Lets go of the block through this object; the block stays for others (see <see cref="Unlink"/>).</summary>
    public void Close() => Dispose();

    /// <summary>Removes the block's name, so nobody can attach any more; objects already attached keep working.</summary>
    /// <exception cref="FileNotFoundException">The name was already removed.</exception>
    public void Unlink()
    {
        lock (s_blocks)
        {
            if (!s_blocks.Remove(Name))
            {
                throw new FileNotFoundException($"No such shared memory: '{Name}' (it was already unlinked).", Name);
            }
        }
    }

    /// <summary>As <see cref="Close"/>.</summary>
    public void Dispose() => _bytes = null;

    /// <summary>Like Python's repr: <c>SharedMemory('name', size=N)</c>.</summary>
    public override string ToString() => $"SharedMemory('{Name}', size={(_bytes is null ? "closed" : _bytes.Length.ToString(CultureInfo.InvariantCulture))})";

    private static string Bare(string name)
    {
        string bare = name.StartsWith('/') ? name[1..] : name;
        if (bare.Length is 0 or > 250 || bare.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{name}' is not a valid shared memory name: use 1 to 250 characters without '/' (one leading '/' is allowed)", nameof(name));
        }

        return bare;
    }
}
