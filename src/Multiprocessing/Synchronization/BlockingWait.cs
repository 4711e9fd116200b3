using Multiprocessing.Platform;

namespace Multiprocessing.Synchronization;

/// <summary>
/// Runs a futex wait for an async twin. A futex cannot be awaited, so the wait sleeps on a thread of its own (not a pool
/// thread, which it could starve); the caller's token interrupts it. Callers try without blocking first, so only a wait
/// that would block pays for the thread.
/// </summary>
internal static class BlockingWait
{
    public static Task<T> Run<T>(Func<WaitCancellation, T> wait, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<T>(cancellationToken);
        }

        return Task.Factory.StartNew(
            () =>
            {
                using var cancellation = new WaitCancellation(cancellationToken);
                return wait(cancellation);
            },
            cancellationToken,
            TaskCreationOptions.LongRunning | TaskCreationOptions.DenyChildAttach,
            TaskScheduler.Default);
    }
}
