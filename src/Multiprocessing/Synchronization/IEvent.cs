namespace Multiprocessing;

/// <summary>An event flag shared between processes (<see cref="Event"/> and its twins).</summary>
public interface IEvent
{
    /// <summary>True once set, until cleared.</summary>
    bool IsSet { get; }

    /// <summary>Sets the flag and wakes every waiter.</summary>
    void Set();

    /// <summary>Clears the flag.</summary>
    void Clear();

    /// <summary>Waits until the flag is set or the timeout passes; returns the flag.</summary>
    bool Wait(TimeSpan? timeout = null);

    /// <summary>As <see cref="Wait"/>, without blocking the calling thread.</summary>
    Task<bool> WaitAsync(CancellationToken cancellationToken = default);
}
