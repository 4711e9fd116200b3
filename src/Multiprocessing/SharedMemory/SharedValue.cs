using System.Numerics;
using System.Runtime.CompilerServices;
using Multiprocessing.Platform;

namespace Multiprocessing;

/// <summary>
/// One value of an unmanaged type in memory shared with child processes (Python's <c>multiprocessing.Value</c>; a
/// member cannot share its type's name in C#). Hand it to a child as an argument or a captured variable: every copy
/// reads and writes the same memory, with no copying.
/// </summary>
/// <remarks>
/// <para>
/// Reads and writes of <see cref="Value"/> are atomic for types of up to 8 bytes; for larger structs hold
/// <see cref="GetLock"/> around them. Beyond CPython, where <c>v.value += 1</c> races, integer values have atomic
/// <see cref="Increment"/>, <see cref="Decrement"/>, <see cref="Add"/>, <see cref="Exchange"/> and
/// <see cref="CompareExchange"/> with <see cref="Interlocked"/>'s semantics; they need no lock.
/// </para>
/// <para>
/// The memory is anonymous (a memfd on Linux): nothing is ever left behind in the file system, however its users end.
/// It crosses to children started with it and through connections; queues refuse it, as Python's does.
/// Dispose it to unmap it from this process (other processes' copies keep working); an undisposed one stays mapped
/// until the process ends. Spans taken from it must not be used after that.
/// </para>
/// </remarks>
/// <typeparam name="T">An unmanaged type: a number, a bool, a char, or a struct of them.</typeparam>
public sealed unsafe class SharedValue<T> : ISharedValue<T>, IDisposable
    where T : unmanaged
{
    private readonly SharedRegion _region;
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
        _region = SharedMemoryBackend.Current.CreateAnonymous(sizeof(T), "mp-value");
        _pointer = (T*)_region.Pointer;
        *_pointer = initial;
        _lock = lk;
    }

    /// <summary>A value that crossed into this process.</summary>
    internal SharedValue(SharedRegion region, ILock? lk)
    {
        if (region.Length < sizeof(T))
        {
            region.Dispose();
            throw new InvalidDataException($"The shared memory received for a SharedValue<{typeof(T).Name}> is {region.Length} bytes; it needs {sizeof(T)}.");
        }

        _region = region;
        _pointer = (T*)region.Pointer;
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

    internal ILock? LockOrNull => _lock;

    internal SharedRegion Region => _region;

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

    /// <summary>Unmaps this process's view; other processes' copies keep working. The lock is not disposed (it may be shared).</summary>
    public void Dispose()
    {
        _pointer = null;
        _region.Dispose();
    }

    /// <summary>Like Python's repr: <c>SharedValue&lt;Int32&gt;(5)</c>.</summary>
    public override string ToString() => _pointer == null ? $"SharedValue<{typeof(T).Name}>(disposed)" : $"SharedValue<{typeof(T).Name}>({Value})";

    private T AddCore(long delta) => SharedInteger.Add(Pointer, delta);
}

/// <summary>The atomic integer operations of <see cref="SharedValue{T}"/>, on a pointer into shared memory; the type tests fold away when compiled.</summary>
internal static unsafe class SharedInteger
{
    public static T Add<T>(T* pointer, long delta)
        where T : unmanaged
    {
        if (typeof(T) == typeof(int))
        {
            int result = Interlocked.Add(ref *(int*)pointer, (int)delta);
            return Unsafe.As<int, T>(ref result);
        }

        if (typeof(T) == typeof(long) || (typeof(T) == typeof(nint) && sizeof(nint) == 8))
        {
            long result = Interlocked.Add(ref *(long*)pointer, delta);
            return Unsafe.As<long, T>(ref result);
        }

        if (typeof(T) == typeof(uint))
        {
            uint result = Interlocked.Add(ref *(uint*)pointer, unchecked((uint)delta));
            return Unsafe.As<uint, T>(ref result);
        }

        if (typeof(T) == typeof(ulong) || (typeof(T) == typeof(nuint) && sizeof(nuint) == 8))
        {
            ulong result = Interlocked.Add(ref *(ulong*)pointer, unchecked((ulong)delta));
            return Unsafe.As<ulong, T>(ref result);
        }

        if (typeof(T) == typeof(short))
        {
            short result = AddLoop(ref *(short*)pointer, unchecked((short)delta));
            return Unsafe.As<short, T>(ref result);
        }

        if (typeof(T) == typeof(ushort))
        {
            ushort result = AddLoop(ref *(ushort*)pointer, unchecked((ushort)delta));
            return Unsafe.As<ushort, T>(ref result);
        }

        if (typeof(T) == typeof(byte))
        {
            byte result = AddLoop(ref *(byte*)pointer, unchecked((byte)delta));
            return Unsafe.As<byte, T>(ref result);
        }

        if (typeof(T) == typeof(sbyte))
        {
            sbyte result = AddLoop(ref *(sbyte*)pointer, unchecked((sbyte)delta));
            return Unsafe.As<sbyte, T>(ref result);
        }

        throw NotInteger<T>();
    }

    public static long ToInt64<T>(T value)
        where T : unmanaged
    {
        if (typeof(T) == typeof(int))
        {
            return Unsafe.As<T, int>(ref value);
        }

        if (typeof(T) == typeof(long) || typeof(T) == typeof(nint))
        {
            return sizeof(T) == 8 ? Unsafe.As<T, long>(ref value) : Unsafe.As<T, int>(ref value);
        }

        if (typeof(T) == typeof(uint))
        {
            return Unsafe.As<T, uint>(ref value);
        }

        if (typeof(T) == typeof(ulong) || typeof(T) == typeof(nuint))
        {
            return sizeof(T) == 8 ? unchecked((long)Unsafe.As<T, ulong>(ref value)) : Unsafe.As<T, uint>(ref value);
        }

        if (typeof(T) == typeof(short))
        {
            return Unsafe.As<T, short>(ref value);
        }

        if (typeof(T) == typeof(ushort))
        {
            return Unsafe.As<T, ushort>(ref value);
        }

        if (typeof(T) == typeof(byte))
        {
            return Unsafe.As<T, byte>(ref value);
        }

        if (typeof(T) == typeof(sbyte))
        {
            return Unsafe.As<T, sbyte>(ref value);
        }

        throw NotInteger<T>();
    }

    public static T Exchange<T>(T* pointer, T value)
        where T : unmanaged
    {
        RequirePrimitive<T>();
        return Interlocked.Exchange(ref *pointer, value);
    }

    public static T CompareExchange<T>(T* pointer, T value, T comparand)
        where T : unmanaged
    {
        RequirePrimitive<T>();
        return Interlocked.CompareExchange(ref *pointer, value, comparand);
    }

    private static void RequirePrimitive<T>()
    {
        if (!typeof(T).IsPrimitive && !typeof(T).IsEnum)
        {
            throw new NotSupportedException($"SharedValue<{typeof(T).Name}> has no atomic Exchange or CompareExchange: they need a primitive type or an enum. Hold GetLock() instead.");
        }
    }

    private static TInt AddLoop<TInt>(ref TInt location, TInt delta)
        where TInt : unmanaged, IBinaryInteger<TInt>
    {
        while (true)
        {
            TInt observed = location;
            TInt sum = unchecked(observed + delta);
            if (Interlocked.CompareExchange(ref location, sum, observed) == observed)
            {
                return sum;
            }
        }
    }

    private static NotSupportedException NotInteger<T>()
        => new($"SharedValue<{typeof(T).Name}> has no atomic arithmetic: Increment, Decrement and Add need an integer type. Hold GetLock() and set Value instead.");
}
