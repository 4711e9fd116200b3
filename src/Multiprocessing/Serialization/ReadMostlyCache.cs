namespace Multiprocessing.Serialization;

/// <summary>
/// A thread-safe map that is read constantly and written a handful of times (one entry per type or method ever seen):
/// readers use an immutable snapshot without locking; a writer copies it. Unlike ConcurrentDictionary it costs a cold
/// child process no assembly load.
/// </summary>
internal sealed class ReadMostlyCache<TKey, TValue>(IEqualityComparer<TKey>? comparer = null)
    where TKey : notnull
{
    private readonly System.Threading.Lock _gate = new();
    private Dictionary<TKey, TValue> _snapshot = new(comparer);

    public bool TryGetValue(TKey key, out TValue value) => Volatile.Read(ref _snapshot).TryGetValue(key, out value!);

    public bool ContainsKey(TKey key) => Volatile.Read(ref _snapshot).ContainsKey(key);

    /// <summary>Looks a string key up by its characters, without allocating a string (the cache must use an ordinal comparer).</summary>
    public bool TryGetValue(ReadOnlySpan<char> key, out TValue value)
    {
        if (Volatile.Read(ref _snapshot) is Dictionary<string, TValue> strings
            && strings.GetAlternateLookup<ReadOnlySpan<char>>().TryGetValue(key, out value!))
        {
            return true;
        }

        value = default!;
        return false;
    }

    /// <summary>Returns the value for <paramref name="key"/>, creating it outside the lock if needed; the first value stored wins.</summary>
    public TValue GetOrAdd(TKey key, Func<TKey, TValue> create)
    {
        if (TryGetValue(key, out TValue existing))
        {
            return existing;
        }

        TValue created = create(key);
        lock (_gate)
        {
            if (_snapshot.TryGetValue(key, out TValue? winner))
            {
                return winner;
            }

            Publish(key, created);
            return created;
        }
    }

    /// <summary>Stores <paramref name="value"/> for <paramref name="key"/>, replacing any earlier one.</summary>
    public void Set(TKey key, TValue value)
    {
        lock (_gate)
        {
            Publish(key, value);
        }
    }

    private void Publish(TKey key, TValue value)
    {
        var next = new Dictionary<TKey, TValue>(_snapshot, _snapshot.Comparer) { [key] = value };
        Volatile.Write(ref _snapshot, next);
    }
}
