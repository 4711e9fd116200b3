using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>A barrier for threads with the API of <see cref="Multiprocessing.Barrier"/> (Python's <c>threading.Barrier</c>).</summary>
public sealed class Barrier : IBarrier, IDisposable
{
    /// <summary>
    /// The process barrier's limit (<see cref="Multiprocessing.Barrier.MaxProcesses"/>), kept so code that checks it
    /// compiles on threads; a thread barrier tracks no processes and has no such limit.
    /// </summary>
    public const int MaxProcesses = Multiprocessing.Barrier.MaxProcesses;

    private const int Filling = 0;
    private const int Draining = 1;
    private const int Resetting = -1;
    private const int BrokenState = -2;

    private readonly object _gate = new();
    private readonly Action? _action;
    private readonly TimeSpan? _defaultTimeout;
    private int _state;
    private int _count;
    private string _reason = "";

    /// <summary>Creates a barrier for <paramref name="parties"/> callers.</summary>
    /// <param name="parties">How many callers of <see cref="Wait"/> release each other.</param>
    /// <param name="action">Runs once per pass on the last arriver's thread, before the others are released.</param>
    /// <param name="timeout">The default timeout of <see cref="Wait"/> (null: forever).</param>
    public Barrier(int parties, Action? action = null, TimeSpan? timeout = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(parties);
        _ = Deadline.After(timeout, nameof(timeout)); // validates it
        Parties = parties;
        _action = action;
        _defaultTimeout = timeout;
    }

    /// <inheritdoc/>
    public int Parties { get; }

    /// <inheritdoc/>
    public int NWaiting
    {
        get
        {
            lock (_gate)
            {
                return _state == Filling ? _count : 0;
            }
        }
    }

    /// <inheritdoc/>
    public bool Broken
    {
        get
        {
            lock (_gate)
            {
                return _state == BrokenState;
            }
        }
    }

    /// <summary>Waits until all parties have arrived (or <paramref name="timeout"/> passes; null: the barrier's default) and returns this caller's index in 0..<see cref="Parties"/>−1.</summary>
    /// <exception cref="BrokenBarrierException">The barrier broke (or was broken, or reset) while or before waiting.</exception>
    public int Wait(TimeSpan? timeout = null) => WaitCore(Deadline.After(timeout ?? _defaultTimeout));

    /// <summary>As <see cref="Wait"/>, on a thread-pool thread rather than blocking the caller; cancelling breaks the barrier, as a timeout does.</summary>
    public Task<int> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        Deadline deadline = Deadline.After(timeout ?? _defaultTimeout);
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<int>(cancellationToken);
        }

        return Task.Factory.StartNew(
            () =>
            {
                using CancellationTokenRegistration registration = cancellationToken.Register(() => Break("the wait was cancelled"));
                try
                {
                    return WaitCore(deadline);
                }
                catch (BrokenBarrierException) when (cancellationToken.IsCancellationRequested)
                {
                    throw new OperationCanceledException(cancellationToken);
                }
            },
            cancellationToken,
            TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach,
            TaskScheduler.Default);
    }

    /// <summary>Releases current waiters with <see cref="BrokenBarrierException"/> and makes the barrier usable again.</summary>
    public void Reset()
    {
        lock (_gate)
        {
            if (_count > 0)
            {
                if (_state is Filling or BrokenState)
                {
                    _reason = "the barrier was reset";
                    _state = Resetting;
                }
            }
            else
            {
                _state = Filling;
            }

            Monitor.PulseAll(_gate);
        }
    }

    /// <summary>Breaks the barrier: current and later waiters get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    public void Abort() => Break("the barrier was aborted");

    /// <summary>Nothing to free; present for parity with the process version.</summary>
    public void Dispose()
    {
    }

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<Barrier(parties={Parties}, waiting={NWaiting}, broken={Broken})>";

    private void Break(string reason)
    {
        lock (_gate)
        {
            if (_state != BrokenState)
            {
                _reason = reason;
            }

            _state = BrokenState;
            Monitor.PulseAll(_gate);
        }
    }

    private int WaitCore(Deadline deadline)
    {
        lock (_gate)
        {
            // Python's algorithm: wait out a draining or resetting pass before joining the next one.
            while (_state is Draining or Resetting)
            {
                Monitor.Wait(_gate);
            }

            ThrowIfBroken();
            int index = _count++;
            try
            {
                if (index + 1 == Parties)
                {
                    Release();
                }
                else
                {
                    WaitForRelease(deadline);
                }

                return index;
            }
            finally
            {
                _count--;
                if (_count == 0 && _state is Resetting or Draining)
                {
                    _state = Filling;
                    Monitor.PulseAll(_gate);
                }
            }
        }
    }

    private void Release()
    {
        try
        {
            _action?.Invoke();
            _state = Draining;
            Monitor.PulseAll(_gate);
        }
        catch
        {
            _reason = "the barrier's action threw";
            _state = BrokenState;
            Monitor.PulseAll(_gate);
            throw;
        }
    }

    private void WaitForRelease(Deadline deadline)
    {
        while (_state == Filling)
        {
            int milliseconds = Waits.Milliseconds(deadline);
            if (milliseconds == 0 || !Monitor.Wait(_gate, milliseconds))
            {
                if (_state != Filling)
                {
                    break;
                }

                _reason = "a wait timed out";
                _state = BrokenState;
                Monitor.PulseAll(_gate);
                break;
            }
        }

        ThrowIfBroken();
    }

    private void ThrowIfBroken()
    {
        if (_state is BrokenState or Resetting)
        {
            throw new BrokenBarrierException($"The barrier is broken: {_reason}.");
        }
    }
}
