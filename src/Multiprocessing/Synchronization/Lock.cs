using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// A lock shared between processes and threads (Python's <c>multiprocessing.Lock</c>): not recursive, and any process
/// or thread may release it. Hand it to a child as an argument or a captured variable; every copy is the same lock.
/// </summary>
/// <remarks>
/// Its state is a word in a small anonymous shared region: acquiring and releasing a free lock make no kernel call;
/// a contended acquire spins briefly, then sleeps on a futex. If the process holding it dies, the next acquirer owns it
/// and gets <see cref="AbandonedMutexException"/> (as with .NET's <see cref="Mutex"/>): the data it guards may be half-updated.
/// This holds for any process that ends holding it, also one that ends normally, and also when the lock was meant to be
/// released by another process later. The holder is known by its pid: if it died and its pid was reused before anyone
/// waited for the lock, waiters wait for the newcomer instead (as CPython's locks always wait).
/// Dispose it only once no thread of this process uses it (other processes' copies are unaffected).
/// </remarks>
public sealed unsafe class Lock : ILock, IScopeRelease, IConditionLock, IPeerDeathListener, IDisposable
{
    /// <summary>The word and the spin estimate.</summary>
    internal const int Size = 8;

    private readonly PrimitiveMemory _memory;
    private int* _word;

    /// <summary>Creates a free lock.</summary>
    public Lock()
        : this(PrimitiveMemory.Create(Size, "mp-lock"))
    {
    }

    internal Lock(PrimitiveMemory memory)
    {
        _memory = memory;
        _word = (int*)memory.Pointer;
    }

    internal PrimitiveMemory Memory => _memory;

    /// <inheritdoc/>
    public bool IsLocked => Volatile.Read(ref *Word) != 0;

    private int* Word => _word != null ? _word : throw new ObjectDisposedException(nameof(Lock));

    /// <summary>Blocks until the lock is acquired.</summary>
    /// <exception cref="AbandonedMutexException">The previous holder's process died holding it; the caller holds it now.</exception>
    public void Acquire()
    {
        int* word = Word;
        if (!FutexMutex.TryEnterFast(word))
        {
            EnterSlow(word, Deadline.Infinite, null);
        }
    }

    /// <summary>Acquires the lock if it comes free within <paramref name="timeout"/>; zero does not block.</summary>
    /// <exception cref="AbandonedMutexException">The previous holder's process died holding it; the caller holds it now.</exception>
    public bool TryAcquire(TimeSpan timeout = default)
    {
        ValidateTimeout(timeout); // a bad timeout is refused even when the lock is free
        int* word = Word;
        return FutexMutex.TryEnterFast(word) || EnterSlow(word, Deadline.After(timeout), null);
    }

    /// <summary>Acquires the lock, sleeping on a thread of its own rather than blocking the caller.</summary>
    public Task AcquireAsync(CancellationToken cancellationToken = default)
    {
        int* word = Word;
        if (FutexMutex.TryEnterFast(word))
        {
            return Task.CompletedTask;
        }

        return BlockingWait.Run(cancellation => EnterSlow(word, Deadline.Infinite, cancellation), cancellationToken);
    }

    /// <summary>Releases the lock (from any process or thread).</summary>
    /// <exception cref="SynchronizationLockException">The lock is not held.</exception>
    public void Release()
    {
        if (!FutexMutex.Exit(Word))
        {
            throw new SynchronizationLockException("Cannot release an unlocked lock.");
        }
    }

    /// <summary>Acquires the lock and returns a scope that releases it: <c>using (lk.EnterScope()) { … }</c>.</summary>
    public LockScope EnterScope()
    {
        Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => Release();

    bool IConditionLock.IsHeldByCaller => IsLocked; // Python's test for a Lock: held by anyone

    int IConditionLock.ReleaseAll()
    {
        Release();
        return 1;
    }

    void IConditionLock.Restore(int saved, int threadId) => Acquire();

    /// <summary>Unmaps this process's view of the lock; other processes' copies keep working.</summary>
    public void Dispose()
    {
        _word = null;
        PeerWatch.Forget(this);
        _memory.Dispose();
    }

    /// <summary>Python's repr: who holds it, seen from here.</summary>
    public override string ToString()
    {
        if (_word == null)
        {
            return "<Lock(disposed)>";
        }

        int owner = FutexMutex.Owner(_word);
        string holder = owner switch
        {
            0 => "None",
            FutexMutex.OwnerDied => "DeadProcess",
            _ when owner == PeerWatch.Self => Process.Current.Name,
            _ => "SomeOtherProcess",
        };
        return $"<Lock(owner={holder})>";
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

    private bool EnterSlow(int* word, Deadline deadline, WaitCancellation? cancellation)
    {
        switch (FutexMutex.Enter(word, deadline, this, cancellation))
        {
            case FutexMutex.Outcome.Acquired:
                return true;
            case FutexMutex.Outcome.Abandoned:
                throw new AbandonedMutexException("A process died holding this lock; the caller holds it now, but the state it guards may be inconsistent.");
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
