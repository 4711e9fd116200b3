namespace Multiprocessing.Pooling;

/// <summary>
/// How a map is split and put back together, shared by the process pool and its thread twin: chunks of Python's
/// default size, results written in place, progress after each chunk, and, once every chunk has finished (a map does
/// not stop at the first failure), the results or the earliest failed chunk's exception.
/// </summary>
internal sealed class MapGather<TResult>
{
    private readonly TResult[] _results;
    private readonly Exception?[] _failures;
    private readonly int[] _reported;
    private readonly IProgress<int>? _progress;
    private readonly Action<IReadOnlyList<TResult>> _succeed;
    private readonly Action<Exception> _fail;
    private int _remaining;
    private int _completed;

    public MapGather(int length, int chunkSize, IProgress<int>? progress, Action<IReadOnlyList<TResult>> succeed, Action<Exception> fail)
    {
        ChunkSize = chunkSize;
        _results = new TResult[length];
        _failures = new Exception?[(length + chunkSize - 1) / chunkSize];
        _reported = new int[_failures.Length];
        _remaining = _failures.Length;
        _progress = progress;
        _succeed = succeed;
        _fail = fail;
    }

    /// <summary>Items per chunk (the last may hold fewer).</summary>
    public int ChunkSize { get; }

    /// <summary>How many chunks the items make.</summary>
    public int Chunks => _failures.Length;

    /// <summary>Where chunk <paramref name="chunk"/>'s items start.</summary>
    public int StartOf(int chunk) => chunk * ChunkSize;

    /// <summary>How many items chunk <paramref name="chunk"/> holds.</summary>
    public int CountOf(int chunk) => Math.Min(ChunkSize, _results.Length - StartOf(chunk));

    /// <summary>Where chunk <paramref name="chunk"/>'s results go.</summary>
    public Span<TResult> SlotOf(int chunk) => _results.AsSpan(StartOf(chunk), CountOf(chunk));

    /// <summary>Chunk <paramref name="chunk"/> has written its results into its slot.</summary>
    public void Succeeded(int chunk)
    {
        if (!FirstReport(chunk))
        {
            return;
        }

        _progress?.Report(Interlocked.Add(ref _completed, CountOf(chunk)));
        Done();
    }

    /// <summary>Chunk <paramref name="chunk"/> failed with <paramref name="error"/>.</summary>
    public void Failed(int chunk, Exception error)
    {
        if (!FirstReport(chunk))
        {
            return;
        }

        _failures[chunk] = error;
        Done();
    }

    /// <summary>
    /// Only a chunk's first outcome counts: a thread pool's task that timed out keeps running and reports again later,
    /// which must not count as another chunk finishing.
    /// </summary>
    private bool FirstReport(int chunk) => Interlocked.Exchange(ref _reported[chunk], 1) == 0;

    private void Done()
    {
        if (Interlocked.Decrement(ref _remaining) > 0)
        {
            return;
        }

        Exception? first = Array.Find(_failures, f => f is not null);
        if (first is null)
        {
            _succeed(_results);
        }
        else
        {
            _fail(first);
        }
    }
}

/// <summary>Chunk sizes, as Python chooses and checks them.</summary>
internal static class MapChunking
{
    /// <summary>Python's default chunk size: about items / (4 × processes), rounded up.</summary>
    public static int DefaultChunkSize(int count, int processes)
    {
        int size = Math.DivRem(count, processes * 4, out int extra);
        return extra > 0 ? size + 1 : Math.Max(size, 1);
    }

    /// <summary>A chunk size given by the caller must be at least 1.</summary>
    public static void ValidateChunkSize(int? chunkSize)
    {
        if (chunkSize is { } size)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(size, 1, nameof(chunkSize));
        }
    }
}
