using System.Collections.Concurrent;
using System.Dynamic;

namespace Multiprocessing.Dummy;

#pragma warning disable CA1822 // instance members, as on the process Manager, so a program can switch namespaces

/// <summary>
/// Python's <c>multiprocessing.dummy.Manager</c>: the same methods as <see cref="Multiprocessing.Manager"/>, but there
/// is no server: each returns the thread object itself (a <see cref="ListProxy{T}"/>, a concurrent dictionary, a
/// dynamic namespace, Dummy locks, queues and values), shared by reference.
/// </summary>
public sealed class Manager : IDisposable
{
    private readonly ConcurrentDictionary<Type, Func<object?>> _types = new();
    private readonly ConcurrentDictionary<string, object?> _named = new(StringComparer.Ordinal);

    /// <summary>No server process on threads: always null.</summary>
    public Process? ServerProcess => null;

    /// <summary>A new list holding <paramref name="items"/>.</summary>
    public ListProxy<T> List<T>(IEnumerable<T>? items = null) => new(items);

    /// <summary>A new dictionary, safe to use from several threads.</summary>
    public IDictionary<TKey, TValue> Dictionary<TKey, TValue>()
        where TKey : notnull
        => new ConcurrentDictionary<TKey, TValue>();

    /// <summary>A new namespace: set and read any member (<c>ns.x = 1</c>).</summary>
    public dynamic Namespace() => new ExpandoObject();

    /// <summary>A new <see cref="Dummy.Lock"/>.</summary>
    public ILock Lock() => new Lock();

    /// <summary>A new <see cref="Dummy.RLock"/>.</summary>
    public ILock RLock() => new RLock();

    /// <summary>A new <see cref="Dummy.Semaphore"/>.</summary>
    public ISemaphore Semaphore(int initial = 1) => new Semaphore(initial);

    /// <summary>A new <see cref="Dummy.BoundedSemaphore"/>.</summary>
    public ISemaphore BoundedSemaphore(int initial = 1) => new BoundedSemaphore(initial);

    /// <summary>A new <see cref="Dummy.Condition"/> over a new RLock.</summary>
    public ICondition Condition() => new Condition();

    /// <summary>A new <see cref="Dummy.Event"/>.</summary>
    public IEvent Event() => new Event();

    /// <summary>A new <see cref="Dummy.Barrier"/> for <paramref name="parties"/>.</summary>
    public IBarrier Barrier(int parties) => new Barrier(parties);

    /// <summary>A new <see cref="Queue{T}"/>; <paramref name="maxSize"/> 0 is unbounded.</summary>
    public IQueue<T> Queue<T>(int maxSize = 0) => new Queue<T>(maxSize);

    /// <summary>A new <see cref="JoinableQueue{T}"/>.</summary>
    public IJoinableQueue<T> JoinableQueue<T>(int maxSize = 0) => new JoinableQueue<T>(maxSize);

    /// <summary>A new <see cref="SharedValue{T}"/>.</summary>
    public ISharedValue<T> Value<T>(T initial = default)
        where T : unmanaged
        => new SharedValue<T>(initial);

    /// <summary>A new <see cref="SharedArray{T}"/> of <paramref name="length"/> zeroes.</summary>
    public ISharedArray<T> Array<T>(int length)
        where T : unmanaged
        => new SharedArray<T>(length);

    /// <summary>Registers a type: <see cref="Create{TInterface}"/> then makes one with <paramref name="factory"/>.</summary>
    public void Register<TInterface>(Func<TInterface> factory)
    {
        ArgumentNullException.ThrowIfNull(factory);
        _types[typeof(TInterface)] = () => factory();
    }

    /// <summary>Registers an object fetched by <paramref name="name"/> with <see cref="Get{TInterface}"/> (made once, at once).</summary>
    public void Register<TInterface>(string name, Func<TInterface> factory)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(factory);
        _named[name] = factory();
    }

    /// <summary>Makes a new object of a registered type.</summary>
    /// <exception cref="InvalidOperationException"><typeparamref name="TInterface"/> was not registered.</exception>
    public TInterface Create<TInterface>()
        => _types.TryGetValue(typeof(TInterface), out Func<object?>? factory)
            ? (TInterface)factory()!
            : throw new InvalidOperationException($"{typeof(TInterface).Name} is not registered with this manager: call Register<{typeof(TInterface).Name}>(factory) first.");

    /// <summary>The object registered under <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">Nothing is registered under that name.</exception>
    public TInterface Get<TInterface>(string name)
        => _named.TryGetValue(name, out object? value)
            ? (TInterface)value!
            : throw new KeyNotFoundException($"Nothing is registered under '{name}'.");

    /// <summary>Nothing to start on threads (present so a program can switch namespaces).</summary>
    public void Start()
    {
    }

    /// <summary>Nothing to shut down on threads; the objects stay usable.</summary>
    public void Shutdown()
    {
    }

    /// <summary>As <see cref="Shutdown"/>.</summary>
    public void Dispose() => Shutdown();
}
