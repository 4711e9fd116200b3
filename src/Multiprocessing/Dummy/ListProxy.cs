using System.Collections;

namespace Multiprocessing.Dummy;

/// <summary>
/// The list a thread <see cref="Manager"/> returns, with the API of <see cref="Multiprocessing.ListProxy{T}"/>: the
/// list itself, shared by reference; each call is atomic (it takes the list's lock), enumeration walks a snapshot.
/// From a manager reached with <see cref="Manager.Connect"/>, it is a proxy to a list kept by that server instead.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public sealed class ListProxy<T> : IList<T>, IReadOnlyList<T>
{
    private readonly List<T> _items;
    private readonly Multiprocessing.ListProxy<T>? _remote;

    internal ListProxy(IEnumerable<T>? items) => _items = [.. items ?? []];

    internal ListProxy(Multiprocessing.ListProxy<T> remote)
    {
        _items = [];
        _remote = remote;
    }

    /// <inheritdoc cref="IList{T}.this"/>
    public T this[int index]
    {
        get
        {
            if (_remote is not null)
            {
                return _remote[index];
            }

            lock (_items)
            {
                return _items[index];
            }
        }

        set
        {
            if (_remote is not null)
            {
                _remote[index] = value;
                return;
            }

            lock (_items)
            {
                _items[index] = value;
            }
        }
    }

    /// <inheritdoc cref="ICollection{T}.Count"/>
    public int Count
    {
        get
        {
            if (_remote is not null)
            {
                return _remote.Count;
            }

            lock (_items)
            {
                return _items.Count;
            }
        }
    }

    /// <inheritdoc/>
    public bool IsReadOnly => false;

    /// <inheritdoc/>
    public void Add(T item)
    {
        if (_remote is not null)
        {
            _remote.Add(item);
            return;
        }

        lock (_items)
        {
            _items.Add(item);
        }
    }

    /// <summary>Appends every item (Python's <c>extend</c>).</summary>
    public void Extend(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        if (_remote is not null)
        {
            _remote.Extend(items);
            return;
        }

        T[] all = [.. items];
        lock (_items)
        {
            _items.AddRange(all);
        }
    }

    /// <summary>Reverses the list in place (Python's <c>reverse</c>).</summary>
    public void Reverse()
    {
        if (_remote is not null)
        {
            _remote.Reverse();
            return;
        }

        lock (_items)
        {
            _items.Reverse();
        }
    }

    /// <summary>Sorts the list in place (Python's <c>sort</c>).</summary>
    public void Sort()
    {
        if (_remote is not null)
        {
            _remote.Sort();
            return;
        }

        lock (_items)
        {
            _items.Sort();
        }
    }

    /// <inheritdoc/>
    public void Clear()
    {
        if (_remote is not null)
        {
            _remote.Clear();
            return;
        }

        lock (_items)
        {
            _items.Clear();
        }
    }

    /// <inheritdoc/>
    public bool Contains(T item)
    {
        if (_remote is not null)
        {
            return _remote.Contains(item);
        }

        lock (_items)
        {
            return _items.Contains(item);
        }
    }

    /// <inheritdoc/>
    public void CopyTo(T[] array, int arrayIndex) => ToArray().CopyTo(array, arrayIndex);

    /// <inheritdoc/>
    public int IndexOf(T item)
    {
        if (_remote is not null)
        {
            return _remote.IndexOf(item);
        }

        lock (_items)
        {
            return _items.IndexOf(item);
        }
    }

    /// <inheritdoc/>
    public void Insert(int index, T item)
    {
        if (_remote is not null)
        {
            _remote.Insert(index, item);
            return;
        }

        lock (_items)
        {
            _items.Insert(index, item);
        }
    }

    /// <inheritdoc/>
    public bool Remove(T item)
    {
        if (_remote is not null)
        {
            return _remote.Remove(item);
        }

        lock (_items)
        {
            return _items.Remove(item);
        }
    }

    /// <inheritdoc/>
    public void RemoveAt(int index)
    {
        if (_remote is not null)
        {
            _remote.RemoveAt(index);
            return;
        }

        lock (_items)
        {
            _items.RemoveAt(index);
        }
    }

    /// <summary>A copy of the elements.</summary>
    public T[] ToArray()
    {
        if (_remote is not null)
        {
            return _remote.ToArray();
        }

        lock (_items)
        {
            return [.. _items];
        }
    }

    /// <summary>Enumerates a snapshot of the list.</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)ToArray()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Python's repr: <c>[1, 2, 'a']</c>.</summary>
    public override string ToString() => _remote?.ToString() ?? "[" + string.Join(", ", ToArray().Select(x => Format(x))) + "]";

    private static string Format(object? value) => value switch
    {
        null => "null",
        string s => "'" + s + "'",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
