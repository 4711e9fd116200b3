namespace Multiprocessing.Synchronization;

/// <summary>What a <c>Condition</c> needs from its lock: Python's <c>_is_owned</c>, <c>_release_save</c> and <c>_acquire_restore</c>.</summary>
internal interface IConditionLock
{
    /// <summary>True if the calling thread may wait (an <see cref="RLock"/>: it owns it; a <see cref="Lock"/>: it is held at all, as in Python).</summary>
    bool IsHeldByCaller { get; }

    /// <summary>Releases the lock completely; returns what <see cref="Restore"/> needs to take it back as it was.</summary>
    int ReleaseAll();

    /// <summary>Takes the lock back for thread <paramref name="threadId"/> as <see cref="ReleaseAll"/> left it; never gives up.</summary>
    void Restore(int saved, int threadId);
}
