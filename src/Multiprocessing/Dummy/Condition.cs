using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>A condition variable for threads with the API of <see cref="Multiprocessing.Condition"/> (Python's <c>threading.Condition</c>).</summary>
public sealed class Condition : ICondition, IScopeRelease, IDisposable
{
    /// <summary>
    /// The process condition's limit on waiters (<see cref="Multiprocessing.Condition.MaxWaiters"/>), kept so code that
    /// checks it compiles on threads; a thread condition has no such limit.
    /// </summary>
    public const int MaxWaiters = Multiprocessing.Condition.MaxWaiters;

    private readonly ILock _lock;
    private readonly IOwnedLock _owned;
    private readonly LinkedList<SemaphoreSlim> _waiters = new();

    /// <summary>Creates a condition over <paramref name="lk"/>, or over a new <see cref="RLock"/> when null.</summary>
    /// <exception cref="ArgumentException"><paramref name="lk"/> is not a <see cref="Lock"/> or <see cref="RLock"/> of <c>Multiprocessing.Dummy</c>.</exception>
    public Condition(ILock? lk = null)
    {
        _lock = lk ?? new RLock();
        _owned = _lock as IOwnedLock
            ?? throw new ArgumentException($"A Dummy Condition needs a Multiprocessing.Dummy Lock or RLock; {_lock.GetType().FullName} is not one.", nameof(lk));
    }

    /// <summary>The lock the condition waits with.</summary>
    public ILock Lock => _lock;

    /// <inheritdoc/>
    public void Acquire() => _lock.Acquire();

    /// <inheritdoc/>
    public bool TryAcquire(TimeSpan timeout = default) => _lock.TryAcquire(timeout);

    /// <inheritdoc/>
    public void Release() => _lock.Release();

    /// <inheritdoc/>
    public LockScope EnterScope()
    {
        _lock.Acquire();
        return new LockScope(this);
    }

    void IScopeRelease.ReleaseScope() => _lock.Release();

    /// <summary>Releases the lock, sleeps until notified or until <paramref name="timeout"/> passes (null: forever), and reacquires the lock; false if it timed out.</summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public bool Wait(TimeSpan? timeout = null)
    {
        int milliseconds = Waits.Milliseconds(timeout);
        LinkedListNode<SemaphoreSlim> node = Enqueue("wait");
        int saved = _owned.ReleaseAll();
        bool notified = false;
        try
        {
            notified = node.Value.Wait(milliseconds);
        }
        finally
        {
            notified = Dequeue(node, notified);
            _owned.RestoreAsync(saved, Environment.CurrentManagedThreadId).GetAwaiter().GetResult();
        }

        return notified;
    }

    /// <summary>As <see cref="Wait"/>, without blocking the caller; the lock is taken back for the thread that called this method.</summary>
    public async Task<bool> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        int milliseconds = Waits.Milliseconds(timeout);
        int thread = Environment.CurrentManagedThreadId;
        LinkedListNode<SemaphoreSlim> node = Enqueue("wait");
        int saved = _owned.ReleaseAll();
        bool notified = false;
        try
        {
            notified = await node.Value.WaitAsync(milliseconds, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            notified = Dequeue(node, notified);
            await _owned.RestoreAsync(saved, thread).ConfigureAwait(false);
        }

        return notified;
    }

    /// <inheritdoc/>
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

            Wait(deadline.IsInfinite ? null : deadline.Remaining);
            result = predicate();
        }

        return result;
    }

    /// <summary>Wakes at most <paramref name="n"/> waiters, the longest waiting first.</summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public void Notify(int n = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ThrowIfNotOwned("notify");
        lock (_waiters)
        {
            while (n-- > 0 && _waiters.First is { } first)
            {
                _waiters.RemoveFirst();
                first.Value.Release();
            }
        }
    }

    /// <summary>Wakes every waiter.</summary>
    /// <exception cref="SynchronizationLockException">The caller does not hold the lock.</exception>
    public void NotifyAll() => Notify(int.MaxValue);

    /// <summary>Nothing to free beyond what the garbage collector takes; present for parity with the process version.</summary>
    public void Dispose()
    {
    }

    /// <summary>Python's repr.</summary>
    public override string ToString()
    {
        lock (_waiters)
        {
            return $"<Condition({_lock}, {_waiters.Count})>";
        }
    }

    private LinkedListNode<SemaphoreSlim> Enqueue(string what)
    {
        ThrowIfNotOwned(what);
        lock (_waiters)
        {
            return _waiters.AddLast(new SemaphoreSlim(0, 1));
        }
    }

    /// <summary>Takes a waiter that gave up out of the queue; if a notify took it first, the wait counts as notified.</summary>
    private bool Dequeue(LinkedListNode<SemaphoreSlim> node, bool notified)
    {
        lock (_waiters)
        {
            if (node.List is not null)
            {
                _waiters.Remove(node);
                node.Value.Dispose();
                return notified;
            }
        }

        return true;
    }

    private void ThrowIfNotOwned(string what)
    {
        if (!_owned.IsHeldByCaller)
        {
            throw new SynchronizationLockException($"Cannot {what} on a condition whose lock the caller does not hold.");
        }
    }
}
