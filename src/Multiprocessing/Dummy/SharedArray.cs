using System.Collections;
using System.Runtime.CompilerServices;

namespace Multiprocessing.Dummy;

/// <summary>
/// A fixed-length array of an unmanaged type shared by threads, with the API of <see cref="Multiprocessing.SharedArray{T}"/>
/// (Python's <c>multiprocessing.dummy.Array</c>): the memory is an ordinary pinned array of this process.
/// </summary>
/// <remarks>
/// Element access and <see cref="AsSpan()"/> take no lock: hold <see cref="GetLock"/> around updates that other
/// threads must see whole. Out-of-range indexes throw <see cref="IndexOutOfRangeException"/>, as arrays do.
/// </remarks>
/// <typeparam name="T">An unmanaged element type.</typeparam>
public sealed unsafe class SharedArray<T> : ISharedArray<T>, IDisposable
    where T : unmanaged
{
    private readonly T[] _memory;
    private readonly ILock? _lock;
    private T* _pointer;

    /// <summary>Creates a zero-filled array of <paramref name="length"/> elements, with a new <see cref="RLock"/> unless <paramref name="locked"/> is false (Python's <c>RawArray</c>).</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="length"/> is negative.</exception>
    public SharedArray(int length, bool locked = true)
        : this(length, locked ? new RLock() : (ILock?)null)
    {
    }

    /// <summary>Creates a zero-filled array guarded by an existing lock.</summary>
    public SharedArray(int length, Lock lk)
        : this(length, (ILock)(lk ?? throw new ArgumentNullException(nameof(lk))))
    {
    }

    /// <summary>Creates a zero-filled array guarded by an existing lock.</summary>
    public SharedArray(int length, RLock lk)
        : this(length, (ILock)(lk ?? throw new ArgumentNullException(nameof(lk))))
    {
    }

    /// <summary>Creates an array holding a copy of <paramref name="values"/>, with a new <see cref="RLock"/> unless <paramref name="locked"/> is false.</summary>
    public SharedArray(ReadOnlySpan<T> values, bool locked = true)
        : this(values.Length, locked ? new RLock() : (ILock?)null) => values.CopyTo(AsSpan());

    /// <summary>Creates an array holding a copy of <paramref name="values"/>, guarded by an existing lock.</summary>
    public SharedArray(ReadOnlySpan<T> values, Lock lk)
        : this(values.Length, lk) => values.CopyTo(AsSpan());

    /// <summary>Creates an array holding a copy of <paramref name="values"/>, guarded by an existing lock.</summary>
    public SharedArray(ReadOnlySpan<T> values, RLock lk)
        : this(values.Length, lk) => values.CopyTo(AsSpan());

    private SharedArray(int length, ILock? lk)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        _memory = GC.AllocateArray<T>(Math.Max(1, length), pinned: true);
        _pointer = (T*)Unsafe.AsPointer(ref _memory[0]);
        Length = length;
        _lock = lk;
    }

    /// <summary>The number of elements; fixed.</summary>
    public int Length { get; }

    int IReadOnlyCollection<T>.Count => Length;

    /// <summary>Whether the array has a lock (false for a raw array, made with <c>locked: false</c>).</summary>
    public bool HasLock => _lock is not null;



    private T* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(SharedArray<T>));

    /// <summary>The element at <paramref name="index"/>, in the shared memory (assignable, and usable with <c>ref</c> and <see cref="Interlocked"/>).</summary>
    /// <exception cref="IndexOutOfRangeException"><paramref name="index"/> is outside 0 … Length − 1.</exception>
    public ref T this[int index]
    {
        get
        {
            T* pointer = Pointer;
            if ((uint)index >= (uint)Length)
            {
                ThrowOutOfRange(index);
            }

            return ref pointer[index];
        }
    }

    T IReadOnlyList<T>.this[int index] => this[index];

    /// <inheritdoc/>
    public T Get(int index) => this[index];

    /// <inheritdoc/>
    public void Set(int index, T value) => this[index] = value;

    /// <inheritdoc/>
    void ISharedArray<T>.CopyFrom(T[] values, int index) => CopyFrom(values, index);

    /// <summary>A copy of the elements in <paramref name="range"/> (Python's <c>a[i:j]</c>); setting it copies the values in.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range lies outside the array.</exception>
    /// <exception cref="ArgumentException">The values set are not as many as the range holds.</exception>
    public T[] this[Range range]
    {
        get => AsSpan(range).ToArray();
        set
        {
            ArgumentNullException.ThrowIfNull(value);
            Span<T> target = AsSpan(range);
            if (value.Length != target.Length)
            {
                throw new ArgumentException($"The range holds {target.Length} elements; {value.Length} were given.", nameof(value));
            }

            value.CopyTo(target);
        }
    }

    /// <summary>The lock guarding the array: a new <see cref="RLock"/> unless one was given (Python's <c>get_lock()</c>).</summary>
    /// <exception cref="InvalidOperationException">The array was created with <c>locked: false</c>.</exception>
    public ILock GetLock() => _lock ?? throw new InvalidOperationException("This SharedArray was created with locked: false (Python's RawArray) and has no lock.");

    /// <summary>The whole array as a span over the shared memory.</summary>
    public Span<T> AsSpan() => new(Pointer, Length);

    /// <summary>A view of <paramref name="length"/> elements from <paramref name="start"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The slice lies outside the array.</exception>
    public Span<T> AsSpan(int start, int length) => AsSpan().Slice(start, length);

    /// <summary>A view of the elements in <paramref name="range"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException">The range lies outside the array.</exception>
    public Span<T> AsSpan(Range range) => AsSpan()[range];

    /// <summary>Copies the whole array into <paramref name="destination"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="destination"/> is shorter than the array.</exception>
    public void CopyTo(Span<T> destination) => AsSpan().CopyTo(destination);

    /// <summary>Copies <paramref name="source"/> into the array from <paramref name="index"/> on.</summary>
    /// <exception cref="ArgumentException"><paramref name="source"/> does not fit.</exception>
    public void CopyFrom(ReadOnlySpan<T> source, int index = 0)
    {
        Span<T> all = AsSpan();
        if ((uint)index > (uint)all.Length || source.Length > all.Length - index)
        {
            throw new ArgumentException($"{source.Length} elements do not fit in a SharedArray of {Length} from index {index}.", nameof(source));
        }

        source.CopyTo(all[index..]);
    }

    /// <summary>A copy of the elements in a new array.</summary>
    public T[] ToArray() => AsSpan().ToArray();

    /// <summary>Enumerates the elements as they are when reached.</summary>
    public IEnumerator<T> GetEnumerator()
    {
        for (int i = 0; i < Length; i++)
        {
            yield return this[i];
        }
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();

    /// <summary>Makes this object unusable (later use throws <see cref="ObjectDisposedException"/>); the memory goes with the garbage collector. The lock is not disposed (it may be shared).</summary>
    public void Dispose()
    {
        _pointer = null;
    }

    /// <summary>A short description: type, length and the first elements.</summary>
    public override string ToString()
        => _pointer == null ? $"SharedArray<{typeof(T).Name}>(disposed)"
            : $"SharedArray<{typeof(T).Name}>[{Length}]({string.Join(", ", AsSpan()[..Math.Min(Length, 8)].ToArray())}{(Length > 8 ? ", …" : "")})";

    private static void ThrowOutOfRange(int index)
    {
#pragma warning disable CA2201 // the issue asks for it: indexing behaves as an array's (Python's IndexError)
        throw new IndexOutOfRangeException($"Index {index} is outside the SharedArray.");
#pragma warning restore CA2201
    }
}
