using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A counting semaphore shared between processes and threads (Python's <c>multiprocessing.Semaphore</c>): it may be
/// released past its starting value. Hand it to a child as an argument or a captured variable; every copy is the same
/// semaphore. <see cref="BoundedSemaphore"/> refuses to go past its starting value.
/// </summary>
/// <remarks>The count lives in a small anonymous shared region; no kernel call unless someone sleeps.</remarks>
public class Semaphore : ISemaphore, IScopeRelease, IDisposable
{
    /// <summary>Count, sleepers, bound.</summary>
    internal const int Size = 12;

    private readonly PrimitiveMemory _memory;
    private unsafe int* _state;

    /// <summary>Creates a semaphore whose count starts at <paramref name="initial"/>.</summary>
    public Semaphore(int initial = 1)
        : this(Create(initial, int.MaxValue))
    {
    }

    private protected Semaphore(int initial, int bound)
        : this(Create(initial, bound))
    {
    }

    internal unsafe Semaphore(PrimitiveMemory memory)
    {
        _memory = memory;
        _state = (int*)memory.Pointer;
    }

    internal PrimitiveMemory Memory => _memory;

    /// <inheritdoc/>
    public unsafe int Value => Volatile.Read(ref *State);

    /// <summary>The most the count may reach (<see cref="int.MaxValue"/> unless bounded).</summary>
    internal unsafe int Bound => State[2];

    private unsafe int* State => _state != null ? _state : throw new ObjectDisposedException(GetType().Name);

    /// <summary>Blocks until the count is positive, then decrements it.</summary>
    public unsafe void Acquire()
    {
        int* state = State;
        if (!FutexCounter.TryTake(state))
        {
            FutexCounter.Take(state, Deadline.Infinite, null);
        }
    }

    /// <summary>Decrements the count if it is positive or becomes so within <paramref name="timeout"/>; zero does not block.</summary>
    public unsafe bool TryAcquire(TimeSpan timeout = default)
    {
        int* state = State;
        return FutexCounter.TryTake(state) || FutexCounter.Take(state, Deadline.After(timeout), null);
    }

    /// <summary>Decrements the count once it is positive, sleeping on a thread of its own rather than blocking the caller.</summary>
    public unsafe Task AcquireAsync(CancellationToken cancellationToken = default)
    {
        int* state = State;
        if (FutexCounter.TryTake(state))
        {
            return Task.CompletedTask;
        }

        return BlockingWait.Run(cancellation => FutexCounter.Take(state, Deadline.Infinite, cancellation), cancellationToken);
    }

    /// <summary>Adds <paramref name="count"/> to the count, waking as many waiters.</summary>
    /// <exception cref="SemaphoreFullException">A <see cref="BoundedSemaphore"/> would pass its starting value.</exception>
    public unsafe void Release(int count = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(count);
        int* state = State;
        if (!FutexCounter.Add(state, count, state[2]))
        {
            throw new SemaphoreFullException($"Releasing {count} would take the {GetType().Name} past its limit of {state[2]}.");
        }
    }

    /// <summary>Acquires and returns a scope that releases once when disposed.</summary>
    public LockScope EnterScope()
    {
        Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => Release();

    /// <summary>Unmaps this process's view; other processes' copies keep working.</summary>
    public void Dispose()
    {
        unsafe
        {
            _state = null;
        }

        _memory.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<{GetType().Name}(value={Value})>";

    private static unsafe PrimitiveMemory Create(int initial, int bound)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(initial);
        PrimitiveMemory memory = PrimitiveMemory.Create(Size, "mp-semaphore");
        int* state = (int*)memory.Pointer;
        state[0] = initial;
        state[2] = bound;
        return memory;
    }
}
