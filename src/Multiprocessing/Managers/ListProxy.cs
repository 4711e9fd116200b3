using System.Collections;
using System.Dynamic;
using Multiprocessing.Managers;

namespace Multiprocessing;

/// <summary>
/// A list kept by a <see cref="Manager"/>'s server (Python's <c>manager.list()</c>): every member is a call to the
/// server, so every process holding the proxy sees the same list. Enumeration and <see cref="CopyTo"/> take a snapshot.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public sealed class ListProxy<T> : IList<T>, IReadOnlyList<T>
{
    private readonly IListOperations<T> _remote;

    internal ListProxy(IListOperations<T> remote) => _remote = remote;

    /// <summary>The element at <paramref name="index"/>.</summary>
    public T this[int index]
    {
        get => _remote[index];
        set => _remote[index] = value;
    }

    /// <summary>The number of elements.</summary>
    public int Count => _remote.Count;

    /// <summary>Always false.</summary>
    public bool IsReadOnly => false;

    /// <summary>Appends <paramref name="item"/>.</summary>
    public void Add(T item) => _remote.Add(item);

    /// <summary>Appends every item of <paramref name="items"/> in one call (Python's <c>extend</c>).</summary>
    public void Extend(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        _remote.Extend([.. items]);
    }

    /// <summary>Reverses the list in place.</summary>
    public void Reverse() => _remote.Reverse();

    /// <summary>Sorts the list in place with the default comparer.</summary>
    public void Sort() => _remote.Sort();

    /// <summary>Removes every element.</summary>
    public void Clear() => _remote.Clear();

    /// <summary>Whether the list holds <paramref name="item"/>.</summary>
    public bool Contains(T item) => _remote.Contains(item);

    /// <summary>Copies a snapshot of the list into <paramref name="array"/>.</summary>
    public void CopyTo(T[] array, int arrayIndex) => _remote.Snapshot().CopyTo(array, arrayIndex);

    /// <summary>The index of <paramref name="item"/>, or −1.</summary>
    public int IndexOf(T item) => _remote.IndexOf(item);

    /// <summary>Inserts <paramref name="item"/> at <paramref name="index"/>.</summary>
    public void Insert(int index, T item) => _remote.Insert(index, item);

    /// <summary>Removes the first <paramref name="item"/>; false if absent.</summary>
    public bool Remove(T item) => _remote.Remove(item);

    /// <summary>Removes the element at <paramref name="index"/>.</summary>
    public void RemoveAt(int index) => _remote.RemoveAt(index);

    /// <summary>A copy of the list as it is now.</summary>
    public T[] ToArray() => _remote.Snapshot();

    /// <summary>Enumerates a snapshot taken now.</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)_remote.Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The contents, as Python prints a list: <c>[9, 8, 7]</c>.</summary>
    public override string ToString() => _remote.Show();
}

/// <summary>A dictionary kept by a <see cref="Manager"/>'s server (Python's <c>manager.dict()</c>).</summary>
/// <typeparam name="TKey">The key type.</typeparam>
/// <typeparam name="TValue">The value type.</typeparam>
internal sealed class DictionaryProxy<TKey, TValue> : IDictionary<TKey, TValue>, IReadOnlyDictionary<TKey, TValue>
    where TKey : notnull
{
    private readonly IDictionaryOperations<TKey, TValue> _remote;

    internal DictionaryProxy(IDictionaryOperations<TKey, TValue> remote) => _remote = remote;

    /// <summary>The value under <paramref name="key"/>; <see cref="RemoteException"/> (KeyNotFoundException) if absent.</summary>
    public TValue this[TKey key]
    {
        get => _remote[key];
        set => _remote[key] = value;
    }

    /// <summary>A snapshot of the keys.</summary>
    public ICollection<TKey> Keys => _remote.Snapshot().Select(p => p.Key).ToArray();

    /// <summary>A snapshot of the values.</summary>
    public ICollection<TValue> Values => _remote.Snapshot().Select(p => p.Value).ToArray();

    IEnumerable<TKey> IReadOnlyDictionary<TKey, TValue>.Keys => Keys;

    IEnumerable<TValue> IReadOnlyDictionary<TKey, TValue>.Values => Values;

    /// <summary>The number of entries.</summary>
    public int Count => _remote.Count;

    /// <summary>Always false.</summary>
    public bool IsReadOnly => false;

    /// <summary>Adds an entry; <see cref="RemoteException"/> (ArgumentException) if the key exists.</summary>
    public void Add(TKey key, TValue value) => _remote.Add(key, value);

    /// <summary>Adds an entry.</summary>
    public void Add(KeyValuePair<TKey, TValue> item) => _remote.Add(item.Key, item.Value);

    /// <summary>Removes every entry.</summary>
    public void Clear() => _remote.Clear();

    /// <summary>Whether the entry is present.</summary>
    public bool Contains(KeyValuePair<TKey, TValue> item) => _remote.Contains(item);

    /// <summary>Whether <paramref name="key"/> is present.</summary>
    public bool ContainsKey(TKey key) => _remote.ContainsKey(key);

    /// <summary>Copies a snapshot into <paramref name="array"/>.</summary>
    public void CopyTo(KeyValuePair<TKey, TValue>[] array, int arrayIndex) => _remote.Snapshot().CopyTo(array, arrayIndex);

    /// <summary>Removes <paramref name="key"/>; false if absent.</summary>
    public bool Remove(TKey key) => _remote.Remove(key);

    /// <summary>Removes the entry; false if absent.</summary>
    public bool Remove(KeyValuePair<TKey, TValue> item) => _remote.Remove(item);

    /// <summary>Reads the value under <paramref name="key"/> in one call.</summary>
    public bool TryGetValue(TKey key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TValue value) => _remote.TryGetValue(key, out value);

    /// <summary>Enumerates a snapshot taken now.</summary>
    public IEnumerator<KeyValuePair<TKey, TValue>> GetEnumerator() => ((IEnumerable<KeyValuePair<TKey, TValue>>)_remote.Snapshot()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>The contents, as Python prints a dict: <c>{'a': 1}</c>.</summary>
    public override string ToString() => _remote.Show();
}

/// <summary>
/// Python's <c>manager.Namespace()</c>: an attribute bag kept by the server, used through <c>dynamic</c>
/// (<c>ns.X = 10</c> in one process, <c>ns.X</c> in another).
/// </summary>
internal sealed class NamespaceProxy : DynamicObject
{
    private readonly INamespaceOperations _remote;

    internal NamespaceProxy(INamespaceOperations remote) => _remote = remote;

    public override bool TryGetMember(GetMemberBinder binder, out object? result) => _remote.TryGet(binder.Name, out result);

    public override bool TrySetMember(SetMemberBinder binder, object? value)
    {
        _remote.Set(binder.Name, value);
        return true;
    }

    public override bool TryDeleteMember(DeleteMemberBinder binder) => _remote.Remove(binder.Name);

    public override string ToString() => _remote.Show();
}
