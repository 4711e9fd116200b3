using System.Collections;
using System.Runtime.CompilerServices;
using Multiprocessing.Platform;

namespace Multiprocessing.Spawning;

/// <summary>
/// Starts children: the parent's own command line is run again with a startup hook that takes over before <c>Main</c>
/// and a control channel on a known descriptor. Keeps one spare child started ahead of need (forkserver's idea).
/// </summary>
internal static class ChildLauncher
{
    public const string ChildVariable = "MULTIPROCESSING_CHILD_FD";
    public const string PreviousHooksVariable = "MULTIPROCESSING_PREVIOUS_STARTUP_HOOKS";
    public const string StartupHooksVariable = "DOTNET_STARTUP_HOOKS";
    public const int ControlFd = 3;

    private static readonly System.Threading.Lock s_spareGate = new();
    private static Spare? s_spare;
    private static bool s_spareLaunching;
    private static string[]? s_commandLine;

    private static volatile bool s_keepSpare = true;

    public static bool KeepSpare
    {
        get => s_keepSpare;
        set
        {
            s_keepSpare = value;
            if (!value)
            {
                KillSpare(permanently: false);
            }
        }
    }

    /// <summary>Set while a spare is ready to be taken; lets tests wait for one instead of sleeping.</summary>
    internal static ManualResetEventSlim SpareReady { get; } = new(false);

    /// <summary>The spare's pid, for tests.</summary>
    internal static int? SparePid
    {
        get
        {
            lock (s_spareGate)
            {
                return s_spare?.Child.Pid;
            }
        }
    }

    private sealed record Spare(LaunchedChild Child, string[] Environment, string WorkingDirectory);

    /// <summary>
    /// Tells the spare, if there is one, that a start request is being prepared, so it is awake when the request
    /// arrives: a CPU that has been idle takes a few hundred microseconds to wake, which now overlaps the request's
    /// serialization instead of following it.
    /// </summary>
    public static void NudgeSpare()
    {
        LaunchedChild? spare;
        lock (s_spareGate)
        {
            spare = s_spare?.Child;
        }

        _ = spare?.Control.TrySendAll(ChildProtocol.WakeFrame);
    }

    /// <summary>Hands <paramref name="startFrame"/> to a spare child, or to a new one, and makes <paramref name="onExit"/> its exit handler.</summary>
    public static LaunchedChild Launch(byte[] startFrame, IReadOnlyList<System.Runtime.InteropServices.SafeHandle>? handles, Action<LaunchedChild> onExit)
    {
        EnsureBootstrapPossible();
        string[] environment = ChildEnvironment();
        if (TakeSpare(environment) is { } spare)
        {
            if (spare.Control.TrySendAll(startFrame, handles))
            {
                Own(spare, onExit);
                return spare;
            }

            // The spare died before it could be handed the request (killed from outside): start a fresh child instead.
            Own(spare, static c => c.Sentinel.Dispose());
        }

        LaunchedChild child = Spawn(environment);

        // A child that dies before reading its request still reports its exit status through the watcher.
        _ = child.Control.TrySendAll(startFrame, handles);
        Own(child, onExit);
        return child;
    }

    /// <summary>Hands the child's end to <paramref name="onExit"/>, calling it at once if the child has already ended.</summary>
    private static void Own(LaunchedChild child, Action<LaunchedChild> onExit)
    {
        if (!child.TryAssignOwner(onExit))
        {
            onExit(child);
        }
    }

    /// <summary>
    /// How long after the last start the spare is refilled: a new runtime's start takes a core for tens of
    /// milliseconds, which on a small machine would be taken from the children just started (a pool's workers, say).
    /// </summary>
    private static readonly TimeSpan RefillDelay = TimeSpan.FromMilliseconds(50);

    private static Timer? s_refillTimer;
    private static PreloadHint s_refillHint = PreloadHint.Empty;
    private static bool s_refillPending;

    /// <summary>
    /// Refills the spare in the background, primed with the types and methods the last start request held (the next
    /// one is likely alike), <see cref="RefillDelay"/> after the last of a burst of starts.
    /// </summary>
    public static void AfterStart(PreloadHint hint)
    {
        if (!KeepSpare)
        {
            return;
        }

        lock (s_spareGate)
        {
            if (s_refillPending)
            {
                s_refillHint = hint; // the latest start is the likeliest model for the next
                _ = s_refillTimer!.Change(RefillDelay, Timeout.InfiniteTimeSpan); // a burst of starts (a pool's workers) pushes it back
                return;
            }

            if (s_spare is not null || s_spareLaunching)
            {
                return;
            }

            s_spareLaunching = true;
            s_refillPending = true;
            s_refillHint = hint;
            s_refillTimer ??= new Timer(static _ => StartPendingRefill(), null, Timeout.Infinite, Timeout.Infinite);
            _ = s_refillTimer.Change(RefillDelay, Timeout.InfiniteTimeSpan);
        }
    }

    private static void StartPendingRefill()
    {
        PreloadHint hint;
        lock (s_spareGate)
        {
            if (!s_refillPending)
            {
                return;
            }

            s_refillPending = false;
            hint = s_refillHint;
            s_refillHint = PreloadHint.Empty;
            if (!KeepSpare || s_discarded)
            {
                s_spareLaunching = false;
                return;
            }
        }

        LaunchSpare(hint);
    }

    private static void LaunchSpare(PreloadHint preload)
    {
        try
        {
            string[] environment = ChildEnvironment();
            string directory = Environment.CurrentDirectory; // before spawning: the child starts in the directory of that moment
            LaunchedChild child = Spawn(environment);
            var spare = new Spare(child, environment, directory);
            _ = child.TryAssignOwner(c =>
            {
                lock (s_spareGate)
                {
                    if (ReferenceEquals(s_spare, spare))
                    {
                        s_spare = null;
                        SpareReady.Reset();
                    }
                }

                if (!c.Claimed)
                {
                    c.Sentinel.Dispose(); // a claimed spare's sentinel belongs to the process it became
                }
            });
            _ = child.Control.TrySendAll(ChildProtocol.Frame(ChildProtocol.Preload, preload));
            lock (s_spareGate)
            {
                if (KeepSpare && !s_discarded)
                {
                    s_spare = spare;
                    SpareReady.Set();
                    return;
                }
            }

            _ = ProcessBackend.Current.Signal(child.Sentinel, ProcessBackend.Current.KillSignal);
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"Multiprocessing: could not start a spare child: {ex.Message}");
        }
        finally
        {
            lock (s_spareGate)
            {
                s_spareLaunching = false;
            }
        }
    }

    private static bool s_discarded;

    private static LaunchedChild? TakeSpare(string[] environment)
    {
        Spare? spare;
        lock (s_spareGate)
        {
            spare = s_spare;
            s_spare = null;
            SpareReady.Reset();
        }

        if (spare is null)
        {
            return null;
        }

        if (spare.Environment.AsSpan().SequenceEqual(environment) && spare.WorkingDirectory == Environment.CurrentDirectory
            && spare.Child.TryClaim())
        {
            return spare.Child;
        }

        // Started under another environment or directory, or already dead: not a faithful child any more.
        _ = ProcessBackend.Current.Signal(spare.Child.Sentinel, ProcessBackend.Current.KillSignal);
        return null;
    }

    /// <summary>Stops the spare for good (at exit).</summary>
    public static void DiscardSpare() => KillSpare(permanently: true);

    private static void KillSpare(bool permanently)
    {
        Spare? spare;
        lock (s_spareGate)
        {
            s_discarded |= permanently;
            spare = s_spare;
            s_spare = null;
            SpareReady.Reset();
        }

        if (spare is not null)
        {
            IProcessBackend backend = ProcessBackend.Current;
            _ = backend.Signal(spare.Child.Sentinel, backend.KillSignal);
            if (permanently && backend.WaitSentinel(spare.Child.Sentinel, TimeSpan.FromSeconds(2)))
            {
                // At exit the watcher may not get to reap it, so its runtime's leftovers are removed here.
                backend.RemoveRuntimeLeftovers(spare.Child.Pid);
            }
        }
    }

    private static LaunchedChild Spawn(string[] environment)
    {
        string[] commandLine = s_commandLine ??= ReadCommandLine(Environment.CurrentDirectory);
        string executable = Environment.ProcessPath ?? throw new PlatformNotSupportedException("The path of the running executable is unknown, so a child cannot be started.");
        IProcessBackend backend = ProcessBackend.Current;
        LaunchedChild child = backend.Launch(executable, commandLine, environment, ControlFd);
        backend.Watch(child);
        return child;
    }

    /// <summary>
    /// Records the command line to re-run for children, with relative paths made absolute, so that changing the working
    /// directory later (<c>dotnet bin/app.dll</c>, then <c>cd /tmp</c>) does not break children. Called when the library loads.
    /// </summary>
    public static void CaptureCommandLine() => s_commandLine ??= ReadCommandLine(Environment.CurrentDirectory);

    /// <summary>The full command line of this process, host arguments included (<c>exec --runtimeconfig …</c> under a test host).</summary>
    private static string[] ReadCommandLine(string workingDirectory)
    {
        string[] arguments = OperatingSystem.IsLinux()
            ? File.ReadAllText("/proc/self/cmdline").Split('\0')[..^1]
            : Environment.GetCommandLineArgs();
        for (int i = 1; i < arguments.Length; i++)
        {
            string argument = arguments[i];
            if (argument.Length > 0 && !Path.IsPathRooted(argument) && File.Exists(Path.Combine(workingDirectory, argument)))
            {
                arguments[i] = Path.GetFullPath(Path.Combine(workingDirectory, argument));
            }
        }

        return arguments;
    }

    /// <summary>This process's environment plus the bootstrap variables, sorted so spares can be compared.</summary>
    private static string[] ChildEnvironment()
    {
        var variables = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in Environment.GetEnvironmentVariables())
        {
            variables[(string)entry.Key] = (string?)entry.Value ?? "";
        }

        variables.Remove(ChildVariable);
        variables.Remove(PreviousHooksVariable);
        string hook = HookAssembly();
        if (!StartupHooksSupported)
        {
            // The child will run Main, whose first statement is Process.RunIfChild().
        }
        else if (variables.TryGetValue(StartupHooksVariable, out string? existing) && existing.Length > 0)
        {
            variables[PreviousHooksVariable] = existing;
            variables[StartupHooksVariable] = existing + Path.PathSeparator + hook;
        }
        else
        {
            variables[StartupHooksVariable] = hook;
        }

        variables[ChildVariable] = ControlFd.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return variables.Select(pair => pair.Key + "=" + pair.Value).ToArray();
    }

    private static string HookAssembly()
    {
        string location = typeof(ChildLauncher).Assembly.Location;
        return location.Length > 0 ? location : typeof(ChildLauncher).Assembly.GetName().Name!;
    }

    /// <summary>Throws when children could not take over before <c>Main</c> and <see cref="Process.RunIfChild"/> was not called.</summary>
    public static void EnsureBootstrapPossible()
    {
        if (!RuntimeFeature.IsDynamicCodeSupported)
        {
            throw new PlatformNotSupportedException(
                "NativeAOT apps cannot start child processes yet: a child finds its target by metadata token and builds its serializers at run time, neither of which NativeAOT supports.");
        }

        if (!StartupHooksSupported && !ChildBootstrap.MainCalledRunIfChild)
        {
            throw new InvalidOperationException(
                "This app cannot start child processes yet: startup hooks are disabled (a trimmed build), so a child would run Main. "
                + "Add 'Multiprocessing.Process.RunIfChild();' as the first statement of Main.");
        }
    }

    private static bool StartupHooksSupported => !AppContext.TryGetSwitch("System.StartupHookProvider.IsSupported", out bool supported) || supported;
}
