using Multiprocessing.Platform;

namespace Multiprocessing.Synchronization;

/// <summary>
/// Runs a futex wait for an async twin. A futex cannot be awaited, so the wait sleeps on a thread of its own (not a pool
/// thread, which it could starve); the caller's token interrupts it. Callers try without blocking first, so only a wait
/// that would block pays for the thread.
/// </summary>
internal static class BlockingWait
{
    /// <summary>
    /// Runs <paramref name="wait"/> on a thread of its own. With <paramref name="mustRun"/> it runs even if the token is
    /// cancelled already (a condition wait must take its lock back whatever happens).
    /// </summary>
    public static Task<T> Run<T>(Func<WaitCancellation, T> wait, CancellationToken cancellationToken, bool mustRun = false)
    {
        if (!mustRun && cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(cancellationToken);
        }

        Task<T> task = Task.Factory.StartNew(
            () =>
            {
                using var cancellation = new WaitCancellation(cancellationToken);
                return wait(cancellation);
            },
            mustRun ? CancellationToken.None : cancellationToken,
            TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach,
            TaskScheduler.Default);
        return mustRun ? EndCancelledAsCancelled(task) : task;
    }

    /// <summary>An async method that rethrows <see cref="OperationCanceledException"/> ends cancelled, not faulted.</summary>
    private static async Task<T> EndCancelledAsCancelled<T>(Task<T> task) => await task.ConfigureAwait(false);
}
