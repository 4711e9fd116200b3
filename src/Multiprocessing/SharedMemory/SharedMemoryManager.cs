namespace Multiprocessing;

/// <summary>
/// Owns the shared memory blocks made through it and unlinks them all when disposed (Python's
/// <c>multiprocessing.managers.SharedMemoryManager</c>, without the server process: the blocks are tracked as any
/// others, so they are also removed if this process is killed before it disposes the manager).
/// </summary>
/// <example>
/// <code>
/// using (var smm = new mp.SharedMemoryManager())
/// {
///     var numbers = smm.ShareableList([1L, 2L, 3L]);
///     var block = smm.SharedMemory(1024);
///     // hand them to children…
/// } // both blocks are unlinked here
/// </code>
/// </example>
public sealed class SharedMemoryManager : IDisposable
{
    private readonly System.Threading.Lock _gate = new();
    private readonly List<SharedMemory> _blocks = [];
    private bool _shutDown;

    /// <summary>The names of the blocks this manager created and has not unlinked yet.</summary>
    public IReadOnlyList<string> BlockNames
    {
        get
        {
            lock (_gate)
            {
                return _blocks.Select(b => b.Name).ToArray();
            }
        }
    }

    /// <summary>Creates a block of <paramref name="size"/> bytes with a fresh name, owned by this manager.</summary>
    /// <exception cref="ObjectDisposedException">The manager was shut down.</exception>
    public SharedMemory SharedMemory(int size) => Own(() => new SharedMemory(create: true, size: size));

    /// <summary>Creates a <see cref="Multiprocessing.ShareableList"/> holding <paramref name="items"/>, owned by this manager.</summary>
    /// <exception cref="ObjectDisposedException">The manager was shut down.</exception>
    public ShareableList ShareableList(IEnumerable<object?> items)
    {
        ShareableList? list = null;
        _ = Own(() => (list = new ShareableList(items)).Shm);
        return list!;
    }

    /// <summary>Unlinks every block this manager created (those already unlinked are skipped); mappings stay valid until closed.</summary>
    public void Shutdown()
    {
        SharedMemory[] blocks;
        lock (_gate)
        {
            _shutDown = true;
            blocks = [.. _blocks];
            _blocks.Clear();
        }

        foreach (SharedMemory block in blocks)
        {
            try
            {
                block.Unlink();
            }
            catch (FileNotFoundException)
            {
                // Someone unlinked it already: nothing of ours is left.
            }
        }
    }

    /// <summary>Shuts the manager down: see <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();

    private SharedMemory Own(Func<SharedMemory> create)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_shutDown, this);
            SharedMemory block = create();
            _blocks.Add(block);
            return block;
        }
    }
}
