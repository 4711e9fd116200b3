using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A condition variable shared between processes and threads (Python's <c>multiprocessing.Condition</c>), over a
/// <see cref="Lock"/> or an <see cref="RLock"/> (a new <see cref="RLock"/> by default). Waiting releases the lock
/// completely (an <see cref="RLock"/>'s recursion is restored after), <see cref="Notify"/> wakes the longest waiting
/// first, and a waiter that timed out never takes a notification from another.
/// </summary>
/// <remarks>
/// Each waiter has a slot in the condition's shared region (at most <see cref="MaxWaiters"/> at once) with a futex word
/// of its own, so a notification wakes exactly the waiters it chose; slots of waiters whose process died are skipped and
/// reclaimed. Hand it to a child as an argument or a captured variable; its lock goes with it.
/// </remarks>
public sealed unsafe class Condition : ICondition, IScopeRelease, IDisposable
{
    /// <summary>How many threads, across all processes, may wait at once.</summary>
    public const int MaxWaiters = (RegionSize - HeaderSize) / SlotSize;

    internal const int RegionSize = 16384;
    private const int HeaderSize = 128; // the ticket counter and the high-water mark, a cache line each
    private const int SlotSize = 64; // state (the futex word), ticket, pid, asleep: a cache line per waiter, so two waiters never share one

    // Slot states; a slot's state word is what its waiter sleeps on.
    private const int Free = 0;
    private const int Waiting = 1;
    private const int Notified = 2;
    private const int Cancelled = 3;

    private readonly ILock _lock;
    private readonly IConditionLock _conditionLock;
    private readonly PrimitiveMemory _memory;
    private byte* _base;

    /// <summary>Creates a condition over <paramref name="lk"/>, or over a new <see cref="RLock"/> when null.</summary>
    /// <exception cref="ArgumentException"><paramref name="lk"/> is not a <see cref="Lock"/> or <see cref="RLock"/> of this library.</exception>
    public Condition(ILock? lk = null)
        : this(lk ?? new RLock(), PrimitiveMemory.Create(RegionSize, "mp-condition"))
    {
    }

    internal Condition(ILock lk, PrimitiveMemory memory)
    {
        _lock = lk;
        _conditionLock = lk as IConditionLock
            ?? throw new ArgumentException($"A Condition needs a Multiprocessing Lock or RLock; {lk.GetType().Name} cannot be waited on across processes.", nameof(lk));
        _memory = memory;
        _base = memory.Pointer;
    }

    /// <summary>The lock the condition waits with.</summary>
    public ILock Lock => _lock;

    internal PrimitiveMemory Memory => _memory;

    private byte* Base => _base != null ? _base : throw new ObjectDisposedException(nameof(Condition));

    private int* NextTicket => (int*)Base;

    private int* HighWater => (int*)(Base + 64);

    /// <summary>Acquires the underlying lock.</summary>
    public void Acquire() => _lock.Acquire();

    /// <summary>Acquires the underlying lock within <paramref name="timeout"/>; false otherwise.</summary>
    public bool TryAcquire(TimeSpan timeout = default) => _lock.TryAcquire(timeout);

    /// <summary>Releases the underlying lock.</summary>
    public void Release() => _lock.Release();

    /// <summary>Acquires the underlying lock and returns a scope that releases it.</summary>
    public LockScope EnterScope()
    {
        _lock.Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => _lock.Release();

    /// <summary>
    /// Releases the lock, sleeps until notified or until <paramref name="timeout"/> passes (null: forever), and reacquires
    /// the lock before returning; false if it timed out.
    /// </summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public bool Wait(TimeSpan? timeout = null)
    {
        Deadline deadline = Deadline.After(timeout);
        int slot = Enqueue();
        int saved = _conditionLock.ReleaseAll();
        return AwaitAndRestore(slot, saved, Environment.CurrentManagedThreadId, deadline, null);
    }

    /// <summary>As <see cref="Wait"/>, sleeping on a thread of its own rather than blocking the caller.</summary>
    /// <remarks>
    /// The lock is taken back for the thread that called this method (which matters for an <see cref="RLock"/>: prefer a
    /// <see cref="Lock"/> for conditions awaited asynchronously). When cancelled, the lock is still taken back before
    /// the task ends as cancelled.
    /// </remarks>
    public Task<bool> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        Deadline deadline = Deadline.After(timeout);
        int thread = Environment.CurrentManagedThreadId;
        int slot = Enqueue();
        int saved = _conditionLock.ReleaseAll();
        return BlockingWait.Run(cancellation => AwaitAndRestore(slot, saved, thread, deadline, cancellation), cancellationToken, mustRun: true);
    }

    /// <summary>
    /// Waits until <paramref name="predicate"/> (evaluated with the lock held) is true or <paramref name="timeout"/>
    /// passes; returns the predicate's last value.
    /// </summary>
    public bool WaitFor(Func<bool> predicate, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(predicate);
        Deadline deadline = Deadline.After(timeout);
        bool result = predicate();
        while (!result)
        {
            if (!deadline.IsInfinite && deadline.HasPassed)
            {
                break;
            }

            Wait(deadline.Remaining);
            result = predicate();
        }

        return result;
    }

    /// <summary>Wakes at most <paramref name="n"/> waiters, the longest waiting first.</summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public void Notify(int n = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        RequireHeld("notify");
        byte* @base = Base;
        int high = Volatile.Read(ref *HighWater);
        for (int woken = 0; woken < n;)
        {
            int oldest = -1;
            int oldestTicket = 0;
            for (int i = 0; i < high; i++)
            {
                int* slot = Slot(@base, i);
                if (Volatile.Read(ref slot[0]) == Waiting && (oldest < 0 || slot[1] - oldestTicket < 0))
                {
                    oldest = i;
                    oldestTicket = slot[1];
                }
            }

            if (oldest < 0)
            {
                return;
            }

            if (TryNotify(Slot(@base, oldest)))
            {
                woken++;
            }
        }
    }

    /// <summary>Wakes every waiter.</summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public void NotifyAll()
    {
        RequireHeld("notify");
        byte* @base = Base;
        int high = Volatile.Read(ref *HighWater);
        for (int i = 0; i < high; i++)
        {
            int* slot = Slot(@base, i);
            if (Volatile.Read(ref slot[0]) == Waiting)
            {
                TryNotify(slot);
            }
        }
    }

    /// <summary>Unmaps this process's view of the condition (not of its lock); other processes' copies keep working.</summary>
    public void Dispose()
    {
        _base = null;
        _memory.Dispose();
    }

    /// <summary>Python's repr: the lock and the number of waiters.</summary>
    public override string ToString() => $"<Condition({_lock}, {(_base == null ? 0 : WaitingCount)})>";

    /// <summary>Waiters not yet notified (nor timed out), in every process.</summary>
    internal int WaitingCount => CountSlots(Waiting);

    /// <summary>Waiters that timed out or were cancelled and have not taken the lock back yet.</summary>
    internal int CancelledCount => CountSlots(Cancelled);

    private int CountSlots(int state)
    {
        byte* @base = Base;
        int high = Volatile.Read(ref *HighWater), count = 0;
        for (int i = 0; i < high; i++)
        {
            count += Volatile.Read(ref Slot(@base, i)[0]) == state ? 1 : 0;
        }

        return count;
    }

    /// <summary>The wait of <see cref="Barrier"/> (which holds a <see cref="Lock"/> and may be on a helper thread).</summary>
    internal bool WaitUntil(Deadline deadline, WaitCancellation? cancellation)
    {
        int slot = Enqueue();
        int saved = _conditionLock.ReleaseAll();
        return AwaitAndRestore(slot, saved, Environment.CurrentManagedThreadId, deadline, cancellation);
    }

    private static int* Slot(byte* @base, int index) => (int*)(@base + HeaderSize + (index * SlotSize));

    private void RequireHeld(string what)
    {
        if (!_conditionLock.IsHeldByCaller)
        {
            throw new SynchronizationLockException($"Cannot {what} on a condition whose lock the caller does not hold.");
        }
    }

    /// <summary>Takes a free slot (under the lock) and queues the caller in it.</summary>
    private int Enqueue()
    {
        RequireHeld("wait");
        byte* @base = Base;
        for (int attempt = 0; attempt < 2; attempt++)
        {
            for (int i = 0; i < MaxWaiters; i++)
            {
                int* slot = Slot(@base, i);
                if (Volatile.Read(ref slot[0]) == Free)
                {
                    slot[1] = (*NextTicket)++;
                    slot[2] = PeerWatch.Self;
                    slot[3] = 0;
                    Volatile.Write(ref slot[0], Waiting);
                    if (i >= *HighWater)
                    {
                        Volatile.Write(ref *HighWater, i + 1);
                    }

                    return i;
                }
            }

            ReclaimDeadWaiters(@base);
        }

        throw new InvalidOperationException($"More than {MaxWaiters} threads wait on this condition at once.");
    }

    private static void ReclaimDeadWaiters(byte* @base)
    {
        for (int i = 0; i < MaxWaiters; i++)
        {
            int* slot = Slot(@base, i);
            if (Volatile.Read(ref slot[0]) != Free && !PeerWatch.IsAlive(slot[2]))
            {
                Volatile.Write(ref slot[0], Free);
            }
        }
    }

    /// <summary>Notifies a waiting slot and wakes its waiter; false if it was cancelled or its process is gone.</summary>
    private static bool TryNotify(int* slot)
    {
        int pid = slot[2];
        if (pid != PeerWatch.Self && !PeerWatch.IsAlive(pid))
        {
            Volatile.Write(ref slot[0], Free); // its waiter died waiting: the slot is reusable, the notification goes on
            return false;
        }

        if (Interlocked.CompareExchange(ref slot[0], Notified, Waiting) != Waiting)
        {
            return false; // timed out (or cancelled) meanwhile: it must not take the notification
        }

        if (Volatile.Read(ref slot[3]) != 0)
        {
            Futex.Wake(slot, 1); // only a waiter that went to sleep needs the kernel call; a spinning one sees the state
        }

        return true;
    }

    private bool AwaitAndRestore(int slotIndex, int saved, int thread, Deadline deadline, WaitCancellation? cancellation)
    {
        int* slot = Slot(Base, slotIndex);
        try
        {
            return Await(slot, deadline, cancellation);
        }
        finally
        {
            try
            {
                _conditionLock.Restore(saved, thread);
            }
            finally
            {
                Volatile.Write(ref slot[0], Free); // the lock is held again (even if abandoned): slots change under it
            }
        }
    }

    private static bool Await(int* state, Deadline deadline, WaitCancellation? cancellation)
    {
        for (int i = 0; i < SpinPause.WaitBudget && !deadline.HasPassed; i++)
        {
            if (Volatile.Read(ref *state) == Notified)
            {
                return true;
            }

            SpinPause.Once();
        }

        // Announce the sleep before the last look (a full fence): a notifier either sees it and wakes us, or we see its notification.
        Interlocked.Exchange(ref state[3], 1);
        while (Volatile.Read(ref *state) == Waiting)
        {
            bool woke;
            try
            {
                woke = WaitCancellation.Sleep(state, Waiting, deadline, cancellation);
            }
            catch (OperationCanceledException)
            {
                if (Interlocked.CompareExchange(ref *state, Cancelled, Waiting) == Waiting)
                {
                    throw;
                }

                return true; // notified just as it was cancelled: the notification wins, it is not lost
            }

            if (!woke)
            {
                return Interlocked.CompareExchange(ref *state, Cancelled, Waiting) != Waiting;
            }
        }

        return true;
    }
}
