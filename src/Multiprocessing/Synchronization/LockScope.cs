namespace Multiprocessing;

/// <summary>Something a <see cref="LockScope"/> releases.</summary>
internal interface IScopeRelease
{
    /// <summary>Releases what the scope acquired.</summary>
    void ReleaseScope();
}

/// <summary>A held lock or semaphore, released by <see cref="Dispose"/>: the <c>with lock:</c> of Python.</summary>
public readonly struct LockScope : IDisposable
{
    private readonly IScopeRelease? _owner;

    internal LockScope(IScopeRelease owner) => _owner = owner;

    /// <summary>Releases the lock or semaphore (a default scope does nothing).</summary>
    public void Dispose() => _owner?.ReleaseScope();
}
