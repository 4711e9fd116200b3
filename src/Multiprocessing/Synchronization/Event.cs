using Multiprocessing.Platform;
using Multiprocessing.Synchronization;

namespace Multiprocessing;

/// <summary>
/// An event flag shared between processes and threads (Python's <c>multiprocessing.Event</c>): <see cref="Set"/> wakes
/// every waiter, and waits return at once while it stays set. Hand it to a child as an argument or a captured variable.
/// </summary>
public sealed unsafe class Event : IEvent, IDisposable
{
    /// <summary>Flag, sleepers.</summary>
    internal const int Size = 8;

    private readonly PrimitiveMemory _memory;
    private int* _state;

    /// <summary>Creates a cleared event.</summary>
    public Event()
        : this(PrimitiveMemory.Create(Size, "mp-event"))
    {
    }

    internal Event(PrimitiveMemory memory)
    {
        _memory = memory;
        _state = (int*)memory.Pointer;
    }

    internal PrimitiveMemory Memory => _memory;

    /// <inheritdoc/>
    public bool IsSet => Volatile.Read(ref *State) != 0;

    private int* State => _state != null ? _state : throw new ObjectDisposedException(nameof(Event));

    /// <summary>Sets the flag and wakes every waiter, in every process.</summary>
    public void Set() => FutexCounter.SetFlag(State);

    /// <summary>Clears the flag.</summary>
    public void Clear() => Volatile.Write(ref *State, 0);

    /// <summary>Waits until the flag is set or <paramref name="timeout"/> passes (null: forever; zero: do not block); returns the flag.</summary>
    public bool Wait(TimeSpan? timeout = null) => FutexCounter.WaitForFlag(State, Deadline.After(timeout), null);

    /// <summary>Waits until the flag is set, without blocking the calling thread; returns true.</summary>
    public Task<bool> WaitAsync(CancellationToken cancellationToken = default) => WaitAsync(null, cancellationToken);

    /// <summary>Waits until the flag is set or <paramref name="timeout"/> passes, without blocking the calling thread; returns the flag.</summary>
    public Task<bool> WaitAsync(TimeSpan? timeout, CancellationToken cancellationToken = default)
    {
        int* state = State;
        if (Volatile.Read(ref *state) != 0)
        {
            return Task.FromResult(true);
        }

        Deadline deadline = Deadline.After(timeout);
        return BlockingWait.Run(cancellation => FutexCounter.WaitForFlag(state, deadline, cancellation), cancellationToken);
    }

    /// <summary>Unmaps this process's view; other processes' copies keep working.</summary>
    public void Dispose()
    {
        _state = null;
        _memory.Dispose();
    }

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<Event({(IsSet ? "set" : "unset")})>";
}
