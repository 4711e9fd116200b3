using System.Text;

namespace Multiprocessing.Managers;

/// <summary>The list, dictionary and namespace a manager serves, and how the server treats built-in objects.</summary>
internal static class BuiltinObjects
{
    /// <summary>Creates the server-side object behind a built-in proxy interface.</summary>
    public static bool TryCreate(Type interfaceType, object?[]? arguments, out object? target, out bool synchronizesItself)
    {
        synchronizesItself = false;
        target = null;
        if (interfaceType.IsGenericType)
        {
            Type definition = interfaceType.GetGenericTypeDefinition();
            Type[] typeArguments = interfaceType.GetGenericArguments();
            if (definition == typeof(IListOperations<>))
            {
                target = Activator.CreateInstance(typeof(SharedList<>).MakeGenericType(typeArguments), arguments is { Length: > 0 } ? arguments[0] : null);
                return true;
            }

            if (definition == typeof(IQueue<>) || definition == typeof(IJoinableQueue<>))
            {
                Type queue = (definition == typeof(IQueue<>) ? typeof(Queue<>) : typeof(JoinableQueue<>)).MakeGenericType(typeArguments);
                target = Activator.CreateInstance(queue, arguments is { Length: > 0 } ? arguments[0] : 0);
                synchronizesItself = true;
                return true;
            }

            if (definition == typeof(ISharedValue<>))
            {
                target = Activator.CreateInstance(typeof(SharedValue<>).MakeGenericType(typeArguments), arguments![0], true);
                return true;
            }

            if (definition == typeof(ISharedArray<>))
            {
                target = Activator.CreateInstance(typeof(SharedArray<>).MakeGenericType(typeArguments), (int)arguments![0]!, true);
                return true;
            }

            if (definition == typeof(IDictionaryOperations<,>))
            {
                target = Activator.CreateInstance(typeof(SharedDictionary<,>).MakeGenericType(typeArguments));
                return true;
            }
        }

        if (interfaceType == typeof(INamespaceOperations))
        {
            target = new SharedNamespace();
            return true;
        }

        return false;
    }

    /// <summary>The server-side synchronization object a manager's <c>Lock()</c>, <c>Event()</c>… proxies: the library's own, used by the server's threads.</summary>
    public static object CreateSynchronization(string kind, object?[]? arguments)
    {
        int Int(int index, int fallback) => arguments is { } a && a.Length > index && a[index] is int value ? value : fallback;
        return kind switch
        {
            "Lock" => new Lock(),
            "RLock" => new RLock(),
            "Semaphore" => new Semaphore(Int(0, 1)),
            "BoundedSemaphore" => new BoundedSemaphore(Int(0, 1)),
            "Condition" => new Condition(),
            "Event" => new Event(),
            "Barrier" => new Barrier(Int(0, 1)),
            _ => throw new ArgumentException($"The manager has no built-in '{kind}'."),
        };
    }

    /// <summary>Objects whose calls may block (locks, queues, events…) synchronize themselves; the server must not lock around them.</summary>
    public static bool SynchronizesItself(object target)
        => target is ISynchronizesItself or ILock or ISemaphore or ICondition or IEvent or IBarrier
            || Array.Exists(target.GetType().GetInterfaces(), i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IQueue<>));

    /// <summary>Interfaces whose results always stay on the server and go back as proxies (a value's lock, say).</summary>
    public static bool IsAlwaysProxied(Type interfaceType)
        => interfaceType == typeof(ILock) || interfaceType == typeof(ISemaphore) || interfaceType == typeof(ICondition)
            || interfaceType == typeof(IEvent) || interfaceType == typeof(IBarrier);

    /// <summary>Interfaces of objects whose calls may wait in the server (and whose owner thread may matter).</summary>
    public static bool IsSynchronizationInterface(Type interfaceType)
        => IsAlwaysProxied(interfaceType) || typeof(ISynchronizesItself).IsAssignableFrom(interfaceType)
            || (interfaceType.IsGenericType && (interfaceType.GetGenericTypeDefinition() == typeof(IQueue<>) || interfaceType.GetGenericTypeDefinition() == typeof(IJoinableQueue<>)))
            || Array.Exists(interfaceType.GetInterfaces(), i => i.IsGenericType && i.GetGenericTypeDefinition() == typeof(IQueue<>));

    /// <summary>Values that are returned by copy even when typed as an interface (arrays and strings are data).</summary>
    public static bool IsCopied(object value) => value is string or Array;
}

/// <summary>Marks server objects whose methods are thread-safe and may block, so the server calls them without its per-object lock.</summary>
internal interface ISynchronizesItself
{
}

/// <summary>What a list proxy can call on the server.</summary>
internal interface IListOperations<T> : IList<T>
{
    void Reverse();

    void Sort();

    void Extend(T[] items);

    string Show();

    T[] Snapshot();
}

/// <summary>The list a manager keeps.</summary>
internal sealed class SharedList<T>(IEnumerable<T>? items) : List<T>(items ?? []), IListOperations<T>
{
    public SharedList()
        : this(null)
    {
    }

    public void Extend(T[] items) => AddRange(items);

    public string Show() => "[" + string.Join(", ", this.Select(x => Format(x))) + "]";

    public T[] Snapshot() => [.. this];

    internal static string Format(object? value) => value switch
    {
        null => "null",
        string s => "'" + s + "'",
        IFormattable f => f.ToString(null, System.Globalization.CultureInfo.InvariantCulture),
        _ => value.ToString() ?? "",
    };
}

/// <summary>What a dictionary proxy can call on the server.</summary>
internal interface IDictionaryOperations<TKey, TValue> : IDictionary<TKey, TValue>
    where TKey : notnull
{
    KeyValuePair<TKey, TValue>[] Snapshot();

    string Show();
}

/// <summary>The dictionary a manager keeps.</summary>
internal sealed class SharedDictionary<TKey, TValue> : Dictionary<TKey, TValue>, IDictionaryOperations<TKey, TValue>
    where TKey : notnull
{
    public KeyValuePair<TKey, TValue>[] Snapshot() => [.. this];

    public string Show() => "{" + string.Join(", ", this.Select(p => SharedList<object>.Format(p.Key) + ": " + SharedList<object>.Format(p.Value))) + "}";
}

/// <summary>What a namespace proxy can call on the server.</summary>
internal interface INamespaceOperations
{
    bool TryGet(string name, out object? value);

    void Set(string name, object? value);

    bool Remove(string name);

    string Show();
}

/// <summary>The attribute bag a manager keeps for <c>Namespace()</c>.</summary>
internal sealed class SharedNamespace : INamespaceOperations
{
    private readonly SortedDictionary<string, object?> _values = new(StringComparer.Ordinal);

    public bool TryGet(string name, out object? value) => _values.TryGetValue(name, out value);

    public void Set(string name, object? value) => _values[name] = value;

    public bool Remove(string name) => _values.Remove(name);

    public string Show()
    {
        var text = new StringBuilder("Namespace(");
        text.AppendJoin(", ", _values.Select(p => p.Key + "=" + SharedList<object>.Format(p.Value)));
        return text.Append(')').ToString();
    }
}
