namespace Multiprocessing.Dummy;

/// <summary>What a <see cref="Condition"/> needs from its lock: whether the caller holds it, and a full release and restore.</summary>
internal interface IOwnedLock
{
    /// <summary>Python's <c>_is_owned</c>: for a Lock, held by anyone; for an RLock, by the calling thread.</summary>
    bool IsHeldByCaller { get; }

    /// <summary>Releases every level the caller holds and returns how many.</summary>
    int ReleaseAll();

    /// <summary>Re-acquires, for <paramref name="thread"/>, as deeply as <see cref="ReleaseAll"/> returned, without blocking the caller.</summary>
    Task RestoreAsync(int saved, int thread);
}
