using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A recursive lock shared between processes (Python's <c>multiprocessing.RLock</c>): owned by one thread of one
/// process, which may acquire it again and must release it as many times. Hand it to a child as an argument or a
/// captured variable; every copy is the same lock.
/// </summary>
/// <remarks>
/// As <see cref="Lock"/>: no kernel call when free, futex sleep when contended, and <see cref="AbandonedMutexException"/>
/// for the next acquirer when the owning process dies. <see cref="AcquireAsync"/> acquires for the thread that calls it,
/// which is the thread that must release it.
/// </remarks>
public sealed unsafe class RLock : ILock, IScopeRelease, IConditionLock, IPeerDeathListener, IDisposable
{
    /// <summary>Word, spin estimate, owner thread, recursion count.</summary>
    internal const int Size = 16;
    private const int OwnerThread = 2;
    private const int Count = 3;

    private readonly PrimitiveMemory _memory;
    private int* _state;

    /// <summary>Creates a free lock.</summary>
    public RLock()
        : this(PrimitiveMemory.Create(Size, "mp-rlock"))
    {
    }

    internal RLock(PrimitiveMemory memory)
    {
        _memory = memory;
        _state = (int*)memory.Pointer;
    }

    internal PrimitiveMemory Memory => _memory;

    /// <inheritdoc/>
    public bool IsLocked => Volatile.Read(ref *State) != 0;

    /// <summary>True if the calling thread of this process owns the lock.</summary>
    public bool IsHeldByCurrentThread => IsOwnedBy(State, Environment.CurrentManagedThreadId);

    /// <summary>How many times the owner has acquired it (0 when free).</summary>
    public int RecursionCount => FutexMutex.Owner(State) == 0 ? 0 : Volatile.Read(ref State[Count]);

    bool IConditionLock.IsHeldByCaller => IsHeldByCurrentThread;

    private int* State => _state != null ? _state : throw new ObjectDisposedException(nameof(RLock));

    /// <summary>Blocks until the calling thread owns the lock (at once if it already does).</summary>
    /// <exception cref="AbandonedMutexException">The previous owner's process died holding it; the caller owns it now.</exception>
    public void Acquire() => Enter(Environment.CurrentManagedThreadId, Deadline.Infinite, null);

    /// <summary>Acquires the lock if the calling thread can own it within <paramref name="timeout"/>; zero does not block.</summary>
    /// <exception cref="AbandonedMutexException">The previous owner's process died holding it; the caller owns it now.</exception>
    public bool TryAcquire(TimeSpan timeout = default)
    {
        ValidateTimeout(timeout); // a bad timeout is refused even when the lock is free
        int* state = State;
        int thread = Environment.CurrentManagedThreadId;
        if (FutexMutex.TryEnterFast(state))
        {
            Own(state, thread);
            return true;
        }

        return Enter(thread, Deadline.After(timeout), null);
    }

    /// <summary>Acquires the lock for the calling thread, sleeping on a thread of its own rather than blocking the caller.</summary>
    public Task AcquireAsync(CancellationToken cancellationToken = default)
    {
        int thread = Environment.CurrentManagedThreadId;
        if (Enter(thread, Deadline.After(TimeSpan.Zero), null))
        {
            return Task.CompletedTask;
        }

        return BlockingWait.Run(cancellation => Enter(thread, Deadline.Infinite, cancellation), cancellationToken);
    }

    /// <summary>Releases one level of ownership; the lock is free when the last one is released.</summary>
    /// <exception cref="SynchronizationLockException">The calling thread does not own the lock.</exception>
    public void Release()
    {
        int* state = State;
        if (!IsOwnedBy(state, Environment.CurrentManagedThreadId))
        {
            throw new SynchronizationLockException("Cannot release an RLock the calling thread does not own.");
        }

        if (--state[Count] == 0)
        {
            state[OwnerThread] = 0;
            FutexMutex.Exit(state);
        }
    }

    /// <summary>Acquires the lock and returns a scope that releases it: <c>using (lk.EnterScope()) { … }</c>.</summary>
    public LockScope EnterScope()
    {
        Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => Release();

    int IConditionLock.ReleaseAll()
    {
        int* state = State;
        int saved = state[Count];
        state[Count] = 0;
        state[OwnerThread] = 0;
        FutexMutex.Exit(state);
        return saved;
    }

    void IConditionLock.Restore(int saved, int threadId)
    {
        try
        {
            Enter(threadId, Deadline.Infinite, null);
        }
        finally
        {
            if (IsOwnedBy(State, threadId))
            {
                State[Count] = saved; // abandoned or not, the caller owns it as deeply as before
            }
        }
    }

    /// <summary>Unmaps this process's view of the lock; other processes' copies keep working.</summary>
    public void Dispose()
    {
        _state = null;
        PeerWatch.Forget(this);
        _memory.Dispose();
    }

    /// <summary>Python's repr: the owner (seen from here) and the recursion count.</summary>
    public override string ToString()
    {
        if (_state == null)
        {
            return "<RLock(disposed)>";
        }

        int owner = FutexMutex.Owner(_state);
        int count = RecursionCount;
        string holder = owner switch
        {
            0 => "None",
            FutexMutex.OwnerDied => "DeadProcess",
            _ when owner != PeerWatch.Self => "SomeOtherProcess",
            _ when Volatile.Read(ref _state[OwnerThread]) != Environment.CurrentManagedThreadId => "SomeOtherThread",
            _ => Process.Current.Name,
        };
        return $"<RLock({holder}, {count})>";
    }

    void IPeerDeathListener.OnPeerDied(int pid)
    {
        lock (_memory.Gate)
        {
            if (_memory.Pointer != null)
            {
                FutexMutex.MarkOwnerDied((int*)_memory.Pointer, pid);
            }
        }
    }

    private static bool IsOwnedBy(int* state, int thread)
        => FutexMutex.Owner(state) == PeerWatch.Self && Volatile.Read(ref state[OwnerThread]) == thread;

    private static void Own(int* state, int thread)
    {
        state[OwnerThread] = thread;
        state[Count] = 1;
    }

    private bool Enter(int thread, Deadline deadline, WaitCancellation? cancellation)
    {
        int* state = State;
        if (FutexMutex.TryEnterFast(state))
        {
            Own(state, thread);
            return true;
        }

        if (IsOwnedBy(state, thread))
        {
            state[Count]++;
            return true;
        }

        switch (FutexMutex.Enter(state, deadline, this, cancellation))
        {
            case FutexMutex.Outcome.Acquired:
                Own(state, thread);
                return true;
            case FutexMutex.Outcome.Abandoned:
                Own(state, thread);
                throw new AbandonedMutexException("A process died holding this lock; the caller owns it now, but the state it guards may be inconsistent.");
            default:
                return false;
        }
    }

    private static void ValidateTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "A timeout must be zero or positive, or Timeout.InfiniteTimeSpan to wait forever.");
        }
    }
}
