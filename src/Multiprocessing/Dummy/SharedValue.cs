using System.Numerics;
using System.Runtime.CompilerServices;

namespace Multiprocessing.Dummy;

/// <summary>
/// One value of an unmanaged type shared by threads, with the API of <see cref="Multiprocessing.SharedValue{T}"/>
/// (Python's <c>multiprocessing.dummy.Value</c>): the memory is an ordinary pinned array of this process.
/// </summary>
/// <remarks>
/// Reads and writes of <see cref="Value"/> are atomic for types of up to 8 bytes; for larger structs hold
/// <see cref="GetLock"/> around them. Integer values have atomic <see cref="Increment"/>, <see cref="Decrement"/>,
/// <see cref="Add"/>, <see cref="Exchange"/> and <see cref="CompareExchange"/> with <see cref="Interlocked"/>'s semantics.
/// </remarks>
/// <typeparam name="T">An unmanaged type: a number, a bool, a char, or a struct of them.</typeparam>
public sealed unsafe class SharedValue<T> : ISharedValue<T>, IDisposable
    where T : unmanaged
{
    private readonly T[] _memory;
    private readonly ILock? _lock;
    private T* _pointer;

    /// <summary>Creates a value holding <paramref name="initial"/>, with a new <see cref="RLock"/> unless <paramref name="locked"/> is false (Python's <c>RawValue</c>).</summary>
    public SharedValue(T initial = default, bool locked = true)
        : this(initial, locked ? new RLock() : (ILock?)null)
    {
    }

    /// <summary>Creates a value holding <paramref name="initial"/>, guarded by an existing <paramref name="lk"/> (Python's <c>Value(…, lock=lk)</c>).</summary>
    public SharedValue(T initial, Lock lk)
        : this(initial, (ILock)(lk ?? throw new ArgumentNullException(nameof(lk))))
    {
    }

    /// <summary>Creates a value holding <paramref name="initial"/>, guarded by an existing <paramref name="lk"/> (Python's <c>Value(…, lock=lk)</c>).</summary>
    public SharedValue(T initial, RLock lk)
        : this(initial, (ILock)(lk ?? throw new ArgumentNullException(nameof(lk))))
    {
    }

    private SharedValue(T initial, ILock? lk)
    {
        _memory = GC.AllocateArray<T>(1, pinned: true);
        _pointer = (T*)Unsafe.AsPointer(ref _memory[0]);
        *_pointer = initial;
        _lock = lk;
    }

    /// <summary>The value, read from and written to the shared memory.</summary>
    /// <exception cref="ObjectDisposedException">The value was disposed in this process.</exception>
    public T Value
    {
        get
        {
            T* pointer = Pointer;
            if (sizeof(T) == 4)
            {
                int bits = Volatile.Read(ref *(int*)pointer);
                return Unsafe.As<int, T>(ref bits);
            }

            if (sizeof(T) == 8)
            {
                long bits = Volatile.Read(ref *(long*)pointer);
                return Unsafe.As<long, T>(ref bits);
            }

            T value = *pointer;
            Interlocked.MemoryBarrier();
            return value;
        }

        set
        {
            T* pointer = Pointer;
            if (sizeof(T) == 4)
            {
                Volatile.Write(ref *(int*)pointer, Unsafe.As<T, int>(ref value));
            }
            else if (sizeof(T) == 8)
            {
                Volatile.Write(ref *(long*)pointer, Unsafe.As<T, long>(ref value));
            }
            else
            {
                Interlocked.MemoryBarrier();
                *pointer = value;
                Interlocked.MemoryBarrier();
            }
        }
    }

    /// <summary>Whether the value has a lock (false for a raw value, made with <c>locked: false</c>).</summary>
    public bool HasLock => _lock is not null;

    private T* Pointer => _pointer != null ? _pointer : throw new ObjectDisposedException(nameof(SharedValue<T>));

    /// <summary>The lock guarding the value: a new <see cref="RLock"/> unless one was given (Python's <c>get_lock()</c>).</summary>
    /// <exception cref="InvalidOperationException">The value was created with <c>locked: false</c>.</exception>
    public ILock GetLock() => _lock ?? throw new InvalidOperationException("This SharedValue was created with locked: false (Python's RawValue) and has no lock.");

    /// <summary>Atomically adds one; returns the new value. For integer types.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not an integer type.</exception>
    public T Increment() => AddCore(1);

    /// <summary>Atomically subtracts one; returns the new value. For integer types.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not an integer type.</exception>
    public T Decrement() => AddCore(-1);

    /// <summary>Atomically adds <paramref name="delta"/> (wrapping on overflow); returns the new value. For integer types.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not an integer type.</exception>
    public T Add(T delta) => AddCore(SharedInteger.ToInt64(delta));

    /// <summary>Atomically stores <paramref name="value"/>; returns the previous value. For primitive types of 1, 2, 4 or 8 bytes.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not a primitive type of those sizes.</exception>
    public T Exchange(T value) => SharedInteger.Exchange(Pointer, value);

    /// <summary>Atomically stores <paramref name="value"/> if the current value equals <paramref name="comparand"/>; returns the value found.</summary>
    /// <exception cref="NotSupportedException"><typeparamref name="T"/> is not a primitive type of 1, 2, 4 or 8 bytes.</exception>
    public T CompareExchange(T value, T comparand) => SharedInteger.CompareExchange(Pointer, value, comparand);

    /// <summary>Makes this object unusable (later use throws <see cref="ObjectDisposedException"/>); the memory goes with the garbage collector. The lock is not disposed (it may be shared).</summary>
    public void Dispose()
    {
        _pointer = null;
    }

    /// <summary>Like Python's repr: <c>SharedValue&lt;Int32&gt;(5)</c>.</summary>
    public override string ToString() => _pointer == null ? $"SharedValue<{typeof(T).Name}>(disposed)" : $"SharedValue<{typeof(T).Name}>({Value})";

    private T AddCore(long delta) => SharedInteger.Add(Pointer, delta);
}
