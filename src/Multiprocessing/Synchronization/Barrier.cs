using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A barrier shared between processes and threads (Python's <c>multiprocessing.Barrier</c>): <see cref="Wait"/> blocks
/// until <see cref="Parties"/> callers have arrived, then releases them all and starts the next pass. The action runs
/// once per pass, in the last arriver's process, before anyone is released.
/// </summary>
/// <remarks>
/// The state (as CPython's <c>threading.Barrier</c>: filling, draining, resetting, broken) lives in shared memory behind
/// a <see cref="Lock"/> and a <see cref="Condition"/>. Every process holding the barrier is recorded in it (up to
/// <see cref="MaxProcesses"/>) until it disposes the barrier or exits normally; if one ends otherwise (killed, crashed)
/// while others wait, or before they next wait, the barrier breaks for them. Cancelling <see cref="WaitAsync"/> while
/// others wait breaks the barrier too, as a timeout does: the pass cannot complete without the caller.
/// </remarks>
public sealed unsafe class Barrier : IBarrier, IPeerDeathListener, IDisposable
{
    /// <summary>How many processes a barrier tracks to detect dead parties.</summary>
    public const int MaxProcesses = 32;

    internal const int Size = (HeaderInts + (MaxProcesses * EntryInts)) * sizeof(int);
    private const int HeaderInts = 4;
    private const int EntryInts = 3; // pid, instances in that process, its parties counted in the current pass

    private const int Filling = 0;
    private const int Draining = 1;
    private const int Resetting = -1;
    private const int BrokenState = -2;

    // Why the barrier broke, kept for the exception's message.
    private const int ByAbort = 1;
    private const int ByTimeout = 2;
    private const int ByAction = 3;
    private const int ByDeath = 4;
    private const int ByReset = 5;
    private const int ByCancellation = 6;

    private static readonly List<Barrier> s_attached = [];
    private static int s_exitHookInstalled;

    private readonly Condition _condition;
    private readonly Lock _lock;
    private readonly PrimitiveMemory _memory;
    private int* _state;

    /// <summary>Creates a barrier for <paramref name="parties"/> callers.</summary>
    /// <param name="parties">How many callers of <see cref="Wait"/> release each other.</param>
    /// <param name="action">Runs once per pass in the last arriver's process, before the others are released (it crosses to children with the barrier).</param>
    /// <param name="timeout">The default timeout of <see cref="Wait"/> (null: forever).</param>
    public Barrier(int parties, Action? action = null, TimeSpan? timeout = null)
        : this(new Condition(new Lock()), Create(parties), action, timeout)
    {
        _ = Deadline.After(timeout, nameof(timeout)); // validates it
    }

    internal Barrier(Condition condition, PrimitiveMemory memory, Action? action, TimeSpan? timeout)
    {
        _condition = condition;
        _lock = (Lock)condition.Lock;
        _memory = memory;
        _state = (int*)memory.Pointer;
        Action = action;
        DefaultTimeout = timeout;
        Attach();
    }

    /// <inheritdoc/>
    public int Parties => State[2];

    /// <inheritdoc/>
    public int NWaiting => Volatile.Read(ref State[0]) == Filling ? Volatile.Read(ref State[1]) : 0;

    /// <inheritdoc/>
    public bool Broken => Volatile.Read(ref State[0]) == BrokenState;

    internal Action? Action { get; }

    internal TimeSpan? DefaultTimeout { get; }

    internal Condition Condition => _condition;

    internal PrimitiveMemory Memory => _memory;

    private int* State => _state != null ? _state : throw new ObjectDisposedException(nameof(Barrier));

    private ref int Phase => ref State[0];

    private ref int Count => ref State[1];

    private ref int Reason => ref State[3];

    /// <summary>
    /// Waits until all parties have arrived (or <paramref name="timeout"/> passes; null: the barrier's default) and
    /// returns this caller's index in 0..<see cref="Parties"/>−1, distinct within a pass.
    /// </summary>
    /// <exception cref="BrokenBarrierException">The barrier broke (or was broken, or reset) while or before waiting.</exception>
    public int Wait(TimeSpan? timeout = null) => WaitCore(Deadline.After(timeout ?? DefaultTimeout), null);

    /// <summary>As <see cref="Wait"/>, sleeping on a thread of its own rather than blocking the caller.</summary>
    public Task<int> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        Deadline deadline = Deadline.After(timeout ?? DefaultTimeout);
        return BlockingWait.Run(cancellation => WaitCore(deadline, cancellation), cancellationToken);
    }

    /// <summary>Releases current waiters with <see cref="BrokenBarrierException"/> and makes the barrier usable again.</summary>
    public void Reset()
    {
        EnterLock();
        try
        {
            ForgetDeadProcesses();
            if (Count > 0)
            {
                if (Phase is Filling or BrokenState)
                {
                    Reason = ByReset;
                    Phase = Resetting;
                }
            }
            else
            {
                Phase = Filling;
            }

            _condition.NotifyAll();
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Breaks the barrier: current and later waiters get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    public void Abort()
    {
        EnterLock();
        try
        {
            Break(ByAbort);
        }
        finally
        {
            _lock.Release();
        }
    }

    /// <summary>Records that this process no longer holds the barrier and unmaps it here; other processes' copies keep working.</summary>
    public void Dispose()
    {
        if (_state == null)
        {
            return;
        }

        Detach(Timeout.InfiniteTimeSpan);
        _state = null;
        PeerWatch.Forget(this);
        _memory.Dispose();
        _condition.Dispose();
        _lock.Dispose();
    }

    /// <summary>Python's repr.</summary>
    public override string ToString()
        => _state == null ? "<Barrier(disposed)>" : $"<Barrier(parties={Parties}, waiting={NWaiting}, broken={Broken})>";

    /// <summary>Records, as this process ends normally, that it no longer holds any barrier (so its end breaks nothing).</summary>
    internal static void DetachAllAtExit()
    {
        Barrier[] attached;
        lock (s_attached)
        {
            attached = [.. s_attached];
        }

        foreach (Barrier barrier in attached)
        {
            try
            {
                barrier.Detach(TimeSpan.FromSeconds(1));
            }
            catch (Exception ex) when (ex is ObjectDisposedException or AbandonedMutexException)
            {
            }
        }
    }

    void IPeerDeathListener.OnPeerDied(int pid)
        => ThreadPool.UnsafeQueueUserWorkItem(static state => state.Barrier.ForgetDead(state.Pid), (Barrier: this, Pid: pid), preferLocal: false);

    private static PrimitiveMemory Create(int parties)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parties);
        PrimitiveMemory memory = PrimitiveMemory.Create(Size, "mp-barrier");
        ((int*)memory.Pointer)[2] = parties;
        return memory;
    }

    private int* Entry(int index) => State + HeaderInts + (index * EntryInts);

    private int* EntryOf(int pid)
    {
        for (int i = 0; i < MaxProcesses; i++)
        {
            if (Entry(i)[0] == pid)
            {
                return Entry(i);
            }
        }

        return null;
    }

    private int WaitCore(Deadline deadline, WaitCancellation? cancellation)
    {
        EnterLock();
        try
        {
            // Python's _enter: a pass still draining (or resetting) finishes before a new one fills.
            while (Phase is Draining or Resetting)
            {
                WaitOnCondition(Deadline.Infinite, cancellation);
            }

            if (Phase < 0)
            {
                throw BrokenException();
            }

            // A party counted as waiting may have died a moment ago, before the watch thread reported it: ask now,
            // so this arrival cannot complete a pass with the dead.
            if (Count > 0 && ForgetDeadWaiters())
            {
                Break(ByDeath);
                throw BrokenException();
            }

            int index = Count++;
            int* mine = EntryOf(PeerWatch.Self);
            if (mine != null)
            {
                mine[2]++;
            }

            try
            {
                if (index + 1 == Parties)
                {
                    ReleaseParties();
                }
                else
                {
                    WaitForPass(deadline, cancellation);
                }

                return index;
            }
            finally
            {
                Count--;
                if (mine != null && mine[0] == PeerWatch.Self)
                {
                    mine[2]--;
                }

                ExitPass();
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    private void ReleaseParties()
    {
        try
        {
            Action?.Invoke();
        }
        catch
        {
            Break(ByAction);
            throw;
        }

        Phase = Draining;
        _condition.NotifyAll();
    }

    private void WaitForPass(Deadline deadline, WaitCancellation? cancellation)
    {
        while (Phase == Filling)
        {
            WatchParties();
            if (deadline.HasPassed)
            {
                Break(ByTimeout);
                break;
            }

            try
            {
                WaitOnCondition(deadline, cancellation);
            }
            catch (OperationCanceledException)
            {
                if (Phase == Filling)
                {
                    Break(ByCancellation);
                }

                throw;
            }
        }

        if (Phase < 0)
        {
            throw BrokenException();
        }
    }

    /// <summary>Python's _exit: the last party out of a draining or resetting pass opens the next.</summary>
    private void ExitPass()
    {
        if (Count == 0 && Phase is Draining or Resetting)
        {
            Phase = Filling;
            _condition.NotifyAll();
        }
    }

    private void Break(int reason)
    {
        Reason = reason;
        Phase = BrokenState;
        _condition.NotifyAll();
    }

    private BrokenBarrierException BrokenException() => new(Reason switch
    {
        ByAbort => "The barrier was aborted.",
        ByTimeout => "The barrier is broken: a party's wait timed out.",
        ByAction => "The barrier is broken: its action threw.",
        ByDeath => "The barrier is broken: a process holding it ended while others waited.",
        ByReset => "The barrier was reset while waiting.",
        ByCancellation => "The barrier is broken: a party's wait was cancelled.",
        _ => "The barrier is broken.",
    });

    /// <summary>Takes the barrier's lock; if a process died holding it, the barrier is broken (the lock is then held).</summary>
    private void EnterLock()
    {
        try
        {
            _lock.Acquire();
        }
        catch (AbandonedMutexException)
        {
            Break(ByDeath);
        }
    }

    private void WaitOnCondition(Deadline deadline, WaitCancellation? cancellation)
    {
        try
        {
            _condition.WaitUntil(deadline, cancellation);
        }
        catch (AbandonedMutexException)
        {
            Break(ByDeath); // a party died holding the lock (in the action, say); we hold it now
        }
    }

    /// <summary>Watches every other process holding the barrier (each peer once per process, cheaply after the first time).</summary>
    private void WatchParties()
    {
        for (int i = 0; i < MaxProcesses; i++)
        {
            int pid = Entry(i)[0];
            if (pid != 0 && pid != PeerWatch.Self)
            {
                PeerWatch.Watch(pid, this);
            }
        }
    }

    /// <summary>A process holding the barrier ended without detaching: drop it, and break the pass others wait in.</summary>
    private void ForgetDead(int pid)
    {
        if (_state == null)
        {
            return;
        }

        EnterLock();
        try
        {
            int* entry = EntryOf(pid);
            if (entry == null)
            {
                return; // detached before it ended, or already handled by another process
            }

            Count -= entry[2];
            entry[0] = entry[1] = entry[2] = 0;
            if (Phase == Filling && Count > 0)
            {
                Break(ByDeath);
            }
            else
            {
                ExitPass();
            }
        }
        catch (ObjectDisposedException)
        {
        }
        finally
        {
            if (_state != null)
            {
                _lock.Release();
            }
        }
    }

    /// <summary>Drops the processes counted as waiting that have ended (asking the OS, not the watch); true if any did.</summary>
    private bool ForgetDeadWaiters()
    {
        bool any = false;
        for (int i = 0; i < MaxProcesses; i++)
        {
            int* entry = Entry(i);
            if (entry[0] != 0 && entry[0] != PeerWatch.Self && entry[2] > 0 && !ProcessWatch.IsAlive(entry[0]))
            {
                Count -= entry[2];
                entry[0] = entry[1] = entry[2] = 0;
                any = true;
            }
        }

        return any;
    }

    private void ForgetDeadProcesses()
    {
        for (int i = 0; i < MaxProcesses; i++)
        {
            int* entry = Entry(i);
            if (entry[0] != 0 && !PeerWatch.IsAlive(entry[0]))
            {
                Count -= entry[2];
                entry[0] = entry[1] = entry[2] = 0;
            }
        }
    }

    private void Attach()
    {
        EnterLock();
        try
        {
            int* entry = EntryOf(PeerWatch.Self);
            if (entry == null)
            {
                entry = EntryOf(0);
            }

            if (entry != null)
            {
                entry[0] = PeerWatch.Self;
                entry[1]++;
                _condition.NotifyAll(); // waiters watch the newcomer from now on
            }
        }
        finally
        {
            _lock.Release();
        }

        lock (s_attached)
        {
            s_attached.Add(this);
        }

        if (Interlocked.Exchange(ref s_exitHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => DetachAllAtExit();
        }
    }

    private void Detach(TimeSpan timeout)
    {
        lock (s_attached)
        {
            if (!s_attached.Remove(this))
            {
                return;
            }
        }

        bool held;
        try
        {
            held = _lock.TryAcquire(timeout);
        }
        catch (AbandonedMutexException)
        {
            held = true;
            Break(ByDeath);
        }

        if (!held)
        {
            return;
        }

        try
        {
            int* entry = EntryOf(PeerWatch.Self);
            if (entry != null && --entry[1] <= 0)
            {
                entry[0] = entry[1] = entry[2] = 0;
            }
        }
        finally
        {
            _lock.Release();
        }
    }
}
