namespace Multiprocessing.Platform;

/// <summary>Told when a watched process has ended (on the process-watch thread: keep it short, never block).</summary>
internal interface IPeerDeathListener
{
    /// <summary>Called once <paramref name="pid"/> has ended.</summary>
    void OnPeerDied(int pid);
}

/// <summary>
/// The other processes this one shares primitives with, each watched once: a contended lock or a barrier waiter asks to
/// hear of a peer's end without opening a pidfd per wait, and a condition asks whether a waiter is still alive with a
/// dictionary lookup. A peer's watch (one pidfd) lasts until it ends.
/// </summary>
/// <remarks>
/// Processes are named by pid: a pid reused after its process ended and was reaped names the new process, so a death
/// noticed that late is missed (the next acquirer then waits on the newcomer, as CPython always waits).
/// </remarks>
internal static class PeerWatch
{
    private sealed class Peer
    {
        public IDisposable? Registration { get; set; }

        public HashSet<IPeerDeathListener> Listeners { get; } = new(ReferenceEqualityComparer.Instance);

        public bool Ended { get; set; }
    }

    private static readonly System.Threading.Lock s_gate = new();
    private static readonly Dictionary<int, Peer> s_peers = [];

    /// <summary>This process's id (children are started fresh, never forked, so it is fixed for the life of the statics).</summary>
    public static readonly int Self = Environment.ProcessId;

    /// <summary>Calls <paramref name="listener"/> once <paramref name="pid"/> has ended (at once if it has already).</summary>
    public static void Watch(int pid, IPeerDeathListener listener)
    {
        if (pid == Self || pid <= 0)
        {
            return;
        }

        Peer? peer;
        lock (s_gate)
        {
            if (s_peers.TryGetValue(pid, out peer))
            {
                peer.Listeners.Add(listener);
                return;
            }

            peer = new Peer();
            peer.Listeners.Add(listener);
            s_peers[pid] = peer;
        }

        Start(pid, peer);
    }

    /// <summary>True unless <paramref name="pid"/> is known to have ended; watches it from now on.</summary>
    public static bool IsAlive(int pid)
    {
        if (pid == Self)
        {
            return true;
        }

        Peer? peer;
        lock (s_gate)
        {
            if (s_peers.TryGetValue(pid, out peer))
            {
                return !peer.Ended;
            }

            peer = new Peer();
            s_peers[pid] = peer;
        }

        Start(pid, peer);
        lock (s_gate)
        {
            return !peer.Ended;
        }
    }

    /// <summary>Stops telling <paramref name="listener"/> about any peer (its primitive is being disposed).</summary>
    public static void Forget(IPeerDeathListener listener)
    {
        lock (s_gate)
        {
            foreach (Peer peer in s_peers.Values)
            {
                peer.Listeners.Remove(listener);
            }
        }
    }

    private static void Start(int pid, Peer peer)
    {
        // Outside the gate: the watch calls back at once (on this thread) when the process is already gone.
        IDisposable? registration = ProcessWatch.WhenExited(pid, () => Ended(pid, peer));
        lock (s_gate)
        {
            if (peer.Ended)
            {
                registration?.Dispose();
            }
            else
            {
                peer.Registration = registration;
            }
        }
    }

    private static void Ended(int pid, Peer peer)
    {
        IPeerDeathListener[] listeners;
        lock (s_gate)
        {
            peer.Ended = true;
            if (s_peers.TryGetValue(pid, out Peer? current) && current == peer)
            {
                s_peers.Remove(pid); // a later process with the same pid is a new peer
            }

            listeners = [.. peer.Listeners];
            peer.Listeners.Clear();
            peer.Registration = null;
        }

        foreach (IPeerDeathListener listener in listeners)
        {
            try
            {
                listener.OnPeerDied(pid);
            }
            catch (Exception ex)
            {
                Console.Error.WriteLine($"Multiprocessing: reacting to the end of process {pid} failed: {ex}");
            }
        }
    }
}
