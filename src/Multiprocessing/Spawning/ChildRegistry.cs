namespace Multiprocessing.Spawning;

/// <summary>The children this process started that have not ended, and what happens to them when it exits.</summary>
internal static class ChildRegistry
{
    private static readonly List<Process> s_children = [];
    private static int s_exitHookInstalled;

    public static void Add(Process process)
    {
        lock (s_children)
        {
            if (!process.HasEnded)
            {
                s_children.Add(process);
            }
        }

        if (Interlocked.Exchange(ref s_exitHookInstalled, 1) == 0)
        {
            AppDomain.CurrentDomain.ProcessExit += (_, _) => OnExitWithoutThrowing();
        }
    }

    /// <summary>Whether this process has ever started a child (and so has exit work to do).</summary>
    public static bool EverStarted => Volatile.Read(ref s_exitHookInstalled) != 0;

    public static void Remove(Process process)
    {
        lock (s_children)
        {
            s_children.Remove(process);
        }
    }

    public static IReadOnlyList<Process> Alive()
    {
        lock (s_children)
        {
            return s_children.Where(p => !p.HasEnded).ToArray();
        }
    }

    /// <summary>An exception escaping a ProcessExit handler aborts the app: report it instead.</summary>
    private static void OnExitWithoutThrowing()
    {
        try
        {
            OnExit();
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: cleaning up children at exit failed: {ex}");
        }
    }

    /// <summary>Python's exit behaviour: terminate daemon children, then join every child; the spare goes too.</summary>
    public static void OnExit()
    {
        ChildLauncher.DiscardSpare();
        IReadOnlyList<Process> children = Alive();
        foreach (Process child in children)
        {
            if (child.Daemon)
            {
                child.Terminate();
            }
        }

        foreach (Process child in children)
        {
            child.Join();
        }

        // Children that ended just now may have left a helper freeing their memory, which only this process can reap:
        // give it the few milliseconds it needs rather than leave it to whoever adopts orphans.
        Platform.ProcessBackend.Current.AwaitTeardownHelpers(TimeSpan.FromMilliseconds(100));
    }
}
