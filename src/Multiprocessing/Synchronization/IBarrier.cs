namespace Multiprocessing;

/// <summary>A barrier shared between processes (<see cref="Barrier"/> and its twins).</summary>
public interface IBarrier
{
    /// <summary>How many parties must arrive to pass.</summary>
    int Parties { get; }

    /// <summary>How many parties wait now.</summary>
    int NWaiting { get; }

    /// <summary>True when broken (by a timeout, <see cref="Abort"/>, a failed action or a dead party) until <see cref="Reset"/>.</summary>
    bool Broken { get; }

    /// <summary>Waits until all parties have arrived; returns this party's index in 0..Parties−1.</summary>
    int Wait(TimeSpan? timeout = null);

    /// <summary>As <see cref="Wait"/>, without blocking the calling thread.</summary>
    Task<int> WaitAsync(TimeSpan? timeout = null, CancellationToken cancellationToken = default);

    /// <summary>Breaks the barrier for the current waiters and makes it usable again.</summary>
    void Reset();

    /// <summary>Breaks the barrier: current and future waiters get <see cref="BrokenBarrierException"/> until <see cref="Reset"/>.</summary>
    void Abort();
}
