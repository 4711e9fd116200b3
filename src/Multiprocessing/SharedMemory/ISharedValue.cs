namespace Multiprocessing;

/// <summary>
/// A single value shared between processes (Python's <c>Value</c>): <see cref="SharedValue{T}"/> in shared memory, a
/// manager's <c>Value&lt;T&gt;()</c> proxy, and the thread-backed twin.
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
public interface ISharedValue<T>
    where T : unmanaged
{
    /// <summary>The value.</summary>
    T Value { get; set; }

    /// <summary>The lock that guards compound updates (<c>using (v.GetLock().EnterScope()) v.Value += 1;</c>).</summary>
    /// <exception cref="InvalidOperationException">The value was made without a lock.</exception>
    ILock GetLock();

    /// <summary>Adds one atomically and returns the new value (integer types).</summary>
    T Increment();

    /// <summary>Adds <paramref name="delta"/> atomically and returns the new value (integer types).</summary>
    T Add(T delta);

    /// <summary>Sets <paramref name="value"/> atomically and returns the old value.</summary>
    T Exchange(T value);

    /// <summary>Sets <paramref name="value"/> if the value equals <paramref name="comparand"/>; returns the old value.</summary>
    T CompareExchange(T value, T comparand);
}

/// <summary>
/// A fixed-length array shared between processes (Python's <c>Array</c>): <see cref="SharedArray{T}"/> in shared
/// memory, a manager's <c>Array&lt;T&gt;()</c> proxy, and the thread-backed twin. Members take arrays rather than spans
/// so every implementation (a proxy too) can offer them.
/// </summary>
/// <typeparam name="T">An unmanaged type.</typeparam>
public interface ISharedArray<T> : IReadOnlyList<T>
    where T : unmanaged
{
    /// <summary>The number of elements.</summary>
    int Length { get; }

    /// <summary>Reads the element at <paramref name="index"/>; <see cref="IndexOutOfRangeException"/> outside 0 … Length − 1.</summary>
    T Get(int index);

    /// <summary>Writes the element at <paramref name="index"/>; <see cref="IndexOutOfRangeException"/> outside 0 … Length − 1.</summary>
    void Set(int index, T value);

    /// <summary>A copy of every element.</summary>
    T[] ToArray();

    /// <summary>Copies <paramref name="values"/> in, starting at <paramref name="index"/>.</summary>
    void CopyFrom(T[] values, int index = 0);

    /// <summary>The lock that guards compound updates.</summary>
    /// <exception cref="InvalidOperationException">The array was made without a lock.</exception>
    ILock GetLock();
}
