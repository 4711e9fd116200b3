using System.Collections;

namespace Multiprocessing.Dummy;

/// <summary>
/// The list a thread <see cref="Manager"/> returns, with the API of <see cref="Multiprocessing.ListProxy{T}"/>: the
/// list itself, shared by reference; each call is atomic (it takes the list's lock), enumeration walks a snapshot.
/// </summary>
/// <typeparam name="T">The element type.</typeparam>
public sealed class ListProxy<T> : IList<T>, IReadOnlyList<T>
{
    private readonly List<T> _items;

    internal ListProxy(IEnumerable<T>? items) => _items = [.. items ?? []];

    /// <inheritdoc cref="IList{T}.this"/>
    public T this[int index]
    {
        get
        {
            lock (_items)
            {
                return _items[index];
            }
        }

        set
        {
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
        lock (_items)
        {
            _items.Add(item);
        }
    }

    /// <summary>Appends every item (Python's <c>extend</c>).</summary>
    public void Extend(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        T[] all = [.. items];
        lock (_items)
        {
            _items.AddRange(all);
        }
    }

    /// <summary>Reverses the list in place (Python's <c>reverse</c>).</summary>
    public void Reverse()
    {
        lock (_items)
        {
            _items.Reverse();
        }
    }

    /// <summary>Sorts the list in place (Python's <c>sort</c>).</summary>
    public void Sort()
    {
        lock (_items)
        {
            _items.Sort();
        }
    }

    /// <inheritdoc/>
    public void Clear()
    {
        lock (_items)
        {
            _items.Clear();
        }
    }

    /// <inheritdoc/>
    public bool Contains(T item)
    {
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
        lock (_items)
        {
            return _items.IndexOf(item);
        }
    }

    /// <inheritdoc/>
    public void Insert(int index, T item)
    {
        lock (_items)
        {
            _items.Insert(index, item);
        }
    }

    /// <inheritdoc/>
    public bool Remove(T item)
    {
        lock (_items)
        {
            return _items.Remove(item);
        }
    }

    /// <inheritdoc/>
    public void RemoveAt(int index)
    {
        lock (_items)
        {
            _items.RemoveAt(index);
        }
    }

    /// <summary>A copy of the elements.</summary>
    public T[] ToArray()
    {
        lock (_items)
        {
            return [.. _items];
        }
    }

    /// <summary>Enumerates a snapshot of the list.</summary>
    public IEnumerator<T> GetEnumerator() => ((IEnumerable<T>)ToArray()).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Python's repr: <c>[1, 2, 'a']</c>.</summary>
    public override string ToString() => "[" + string.Join(", ", ToArray().Select(x => Format(x))) + "]";

    private static string Format(object? value) => value switch
    {
        null => "null",
        string s => "'" + s + "'",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}
