using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>
/// Nothing of the primitives is left in the file system, whether their users exit normally or are killed. The machine
/// is shared, so only new entries that can be ours count: named after one of our processes, or after the library.
/// </summary>
[Collection(nameof(SpareChildTests))]
public sealed class SynchronizationLeftoverTests
{
    private static string[] Listing() => [.. Directory.GetFileSystemEntries("/dev/shm").Concat(Directory.GetFileSystemEntries(Path.GetTempPath()))];

    private static string[] OursAmong(IEnumerable<string> entries, params int[] pids)
        => [.. entries.Where(path =>
        {
            string name = Path.GetFileName(path);
            return name.StartsWith("mp-", StringComparison.Ordinal) || name.StartsWith("sem.", StringComparison.Ordinal)
                || name.Contains("multiprocessing", StringComparison.OrdinalIgnoreCase)
                || pids.Any(pid => System.Text.RegularExpressions.Regex.IsMatch(name, $"(^|[^0-9]){pid}([^0-9]|$)"));
        })];

    [Fact]
    public void Every_primitive_leaves_nothing_in_dev_shm_or_tmp_after_normal_and_killed_users()
    {
        string[] before = Listing();
        var lk = new mp.Lock();
        var rl = new mp.RLock();
        var sem = new mp.BoundedSemaphore(2);
        var ev = new mp.Event();
        var cond = new mp.Condition();
        var barrier = new mp.Barrier(2);

        var normal = new mp.Process(() =>
        {
            using (lk.EnterScope())
            using (rl.EnterScope())
            using (sem.EnterScope())
            using (cond.EnterScope())
            {
                ev.Set();
            }

            GC.KeepAlive(barrier);
        });
        Bounded.Run(normal);
        Assert.Equal(0, normal.ExitCode);
        using mp.Process killed = LockTests.StartHolder(() =>
        {
            lk.Acquire();
            rl.Acquire();
            sem.Acquire();
            GC.KeepAlive((ev, cond, barrier));
        });
        killed.Kill();
        Bounded.Join(killed);

        foreach (IDisposable each in new IDisposable[] { lk, rl, sem, ev, cond, barrier })
        {
            each.Dispose();
        }

        Assert.Empty(OursAmong(Listing().Except(before), Environment.ProcessId, normal.Pid!.Value, killed.Pid!.Value));
    }
}
