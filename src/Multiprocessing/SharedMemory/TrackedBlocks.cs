using System.Runtime.InteropServices;
using Multiprocessing.Platform;
using Multiprocessing.Spawning;

namespace Multiprocessing.Sharing;

/// <summary>
/// The creator's side of cleanup: the named blocks this process created with <c>track: true</c> and has not unlinked.
/// Each is kept in use (a descriptor with its shared lock) until unlinked or until this process ends, so that closing
/// the last mapping does not remove a block another process may still attach to by name — Python's semantics.
/// </summary>
internal static class TrackedBlocks
{
    private sealed record Owned(string Name, SafeHandle Handle);

    private static readonly System.Threading.Lock s_gate = new();
    private static readonly Dictionary<long, Owned> s_owned = [];
    private static Connection? s_toTracker;
    private static long s_lastId;

    /// <summary>The tracker's pid, once one was started (for tests).</summary>
    internal static int? TrackerPid => Tracker?.Pid;

    /// <summary>The current tracker, once one was started (for tests).</summary>
    internal static Process? Tracker { get; private set; }

    /// <summary>Hands the block to this process's tracker (starting it on first use); returns the id to forget it by.</summary>
    public static long Register(string name, SharedRegion region)
    {
        SafeHandle owned = SharedBlockUsage.Duplicate(region.Handle);
        lock (s_gate)
        {
            long id = ++s_lastId;
            try
            {
                Send(new TrackerMessage(id, name, owned));
            }
            catch
            {
                owned.Dispose();
                throw;
            }

            s_owned[id] = new Owned(name, owned);
            return id;
        }
    }

    /// <summary>Stops tracking every block this process created under <paramref name="name"/> (it was unlinked).</summary>
    public static void Forget(string name)
    {
        lock (s_gate)
        {
            if (s_owned.Count == 0)
            {
                return;
            }

            foreach ((long id, Owned owned) in s_owned.Where(pair => pair.Value.Name == name).ToArray())
            {
                s_owned.Remove(id);
                owned.Handle.Dispose();
                if (s_toTracker is null)
                {
                    continue; // no tracker now: the next one is told only of the blocks still owned
                }

                try
                {
                    Send(new TrackerMessage(id, name, null));
                }
                catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException)
                {
                    // A tracker that cannot be told has nothing left to do with this block: it is unlinked already.
                }
            }
        }
    }

    /// <summary>Sends one message, starting a tracker first if there is none or the last one died (it is told every block again).</summary>
    private static void Send(TrackerMessage message)
    {
        if (s_toTracker is { } connection)
        {
            try
            {
                connection.Send(message);
                return;
            }
            catch (Exception ex) when (ex is IOException or System.Net.Sockets.SocketException or ObjectDisposedException)
            {
                connection.Dispose(); // the tracker was killed: a new one takes over every block
                s_toTracker = null;
            }
        }

        connection = StartTracker();
        foreach ((long id, Owned owned) in s_owned)
        {
            connection.Send(new TrackerMessage(id, owned.Name, owned.Handle));
        }

        connection.Send(message);
    }

    private static void ReplaceEndedTracker(Connection ended)
    {
        lock (s_gate)
        {
            if (!ReferenceEquals(s_toTracker, ended))
            {
                return; // a failed send replaced it already
            }

            ended.Dispose();
            s_toTracker = null;
            if (s_owned.Count == 0)
            {
                return; // the next tracked block starts one
            }

            try
            {
                Connection connection = StartTracker();
                foreach ((long id, Owned owned) in s_owned)
                {
                    connection.Send(new TrackerMessage(id, owned.Name, owned.Handle));
                }
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"Multiprocessing: the shared memory tracker ended and could not be replaced; blocks will be left if this process is killed: {ex.Message}");
            }
        }
    }

    private static Connection StartTracker()
    {
        (Connection trackerEnd, Connection creatorEnd) = Pipe.Create(duplex: false);
        try
        {
            bool tookSpare = ChildLauncher.SparePid is not null;
            var tracker = new SharedMemoryTracker(trackerEnd);
            try
            {
                tracker.Start();
            }
            catch (Exception ex) when (ex is PlatformNotSupportedException or InvalidOperationException)
            {
                throw new InvalidOperationException(
                    $"A tracked shared memory block needs a tracker process to remove it after this process ends, and none can be started here: {ex.Message} "
                    + "Create the block with track: false and unlink it yourself.", ex);
            }

            Tracker = tracker;

            // A tracker ends before its creator only if something killed it: a new one takes over at once.
            _ = tracker.JoinAsync().ContinueWith(_ => ReplaceEndedTracker(creatorEnd), CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Default);
            if (tookSpare)
            {
                ChildLauncher.AfterStart(PreloadHint.Empty); // the user's next Process.Start should still find a spare
            }
        }
        catch
        {
            creatorEnd.Dispose();
            throw;
        }
        finally
        {
            trackerEnd.Dispose(); // the tracker has its own copy; it must see end of stream when this process ends
        }

        s_toTracker = creatorEnd;
        return creatorEnd;
    }
}
