namespace Multiprocessing.Dummy;

/// <summary>An event for threads with the API of <see cref="Multiprocessing.Event"/> (Python's <c>threading.Event</c>).</summary>
public sealed class Event : IEvent, IDisposable
{
    private readonly ManualResetEventSlim _event = new(false);

    /// <inheritdoc/>
    public bool IsSet => _event.IsSet;

    /// <inheritdoc/>
    public void Set() => _event.Set();

    /// <inheritdoc/>
    public void Clear() => _event.Reset();

    /// <inheritdoc/>
    public bool Wait(TimeSpan? timeout = null) => _event.Wait(Waits.Milliseconds(timeout));

    /// <inheritdoc/>
    public Task<bool> WaitAsync(CancellationToken cancellationToken = default) => WaitAsync(null, cancellationToken);

    /// <summary>Completes with true once the flag is set, or with false after <paramref name="timeout"/> (null: forever).</summary>
    public Task<bool> WaitAsync(TimeSpan? timeout, CancellationToken cancellationToken = default)
    {
        int milliseconds = Waits.Milliseconds(timeout);
        if (_event.IsSet)
        {
            return Task.FromResult(true);
        }

        var source = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        RegisteredWaitHandle registration = ThreadPool.RegisterWaitForSingleObject(
            _event.WaitHandle, (_, timedOut) => source.TrySetResult(!timedOut), null, milliseconds, executeOnlyOnce: true);
        CancellationTokenRegistration cancellation = cancellationToken.Register(() => source.TrySetCanceled(cancellationToken));
        _ = source.Task.ContinueWith(
            _ =>
            {
                registration.Unregister(null);
                cancellation.Dispose();
            },
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
        return source.Task;
    }

    /// <summary>Frees the event's wait handle, if one was made.</summary>
    public void Dispose() => _event.Dispose();

    /// <summary>Python's repr.</summary>
    public override string ToString() => $"<Event({(IsSet ? "set" : "unset")})>";
}
