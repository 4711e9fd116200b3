using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>The OS operations that starting, watching and signalling child processes need.</summary>
internal interface IProcessBackend
{
    /// <summary>Starts <paramref name="executable"/> with a control channel installed as <paramref name="controlFd"/> in the child and stdin on /dev/null.</summary>
    LaunchedChild Launch(string executable, IReadOnlyList<string> arguments, IReadOnlyList<string> environment, int controlFd);

    /// <summary>Opens the control channel a parent handed to this process.</summary>
    IControlChannel AdoptInheritedChannel(int fd);

    /// <summary>A handle that becomes readable when the process <paramref name="pid"/> ends, or null when it is already gone.</summary>
    SafeHandle? OpenSentinel(int pid);

    /// <summary>Blocks until <paramref name="sentinel"/> is signalled or the timeout passes; returns true when it was signalled (or already released, which happens only after the process was reaped).</summary>
    bool WaitSentinel(SafeHandle sentinel, TimeSpan timeout);

    /// <summary>Sends <paramref name="signal"/> to the process behind <paramref name="sentinel"/>; false when it has already been reaped.</summary>
    bool Signal(SafeHandle sentinel, int signal);

    /// <summary>
    /// Reads what <paramref name="child"/> writes as it writes it, and calls <see cref="LaunchedChild.NotifyExited"/> once it
    /// has been reaped. The watcher owns the control channel and holds a reference on the sentinel until then.
    /// </summary>
    void Watch(LaunchedChild child);

    /// <summary>Removes files the runtime of <paramref name="pid"/> (a child that has ended but not been reaped) left behind.</summary>
    void RemoveRuntimeLeftovers(int pid);

    /// <summary>The pid of the process that started this one.</summary>
    int ParentPid { get; }

    /// <summary>Ends this process now with <paramref name="exitCode"/>, running no managed shutdown.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    void ExitImmediately(int exitCode);

    /// <summary>Waits up to <paramref name="timeout"/> until the helpers that ended children left behind (see <see cref="ExitAfterTarget"/>) have been reaped.</summary>
    void AwaitTeardownHelpers(TimeSpan timeout);

    /// <summary>Does ahead of time what <see cref="ExitAfterTarget"/> needs worked out, so that the exit itself is quick (best effort; never throws).</summary>
    void PrepareExit();

    /// <summary>
    /// As <see cref="ExitImmediately"/>, for a child whose target has finished: where the OS allows, the work of freeing
    /// the process's memory is handed to a helper the parent reaps later, so the parent sees this process end sooner.
    /// <paramref name="control"/> is the channel to the parent (used, then closed).
    /// </summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    void ExitAfterTarget(int exitCode, IControlChannel control);

    /// <summary>Lets SIGTERM end this process the way it ends a native one, so the parent sees −15.</summary>
    void RestoreDefaultTerminationSignal();

    /// <summary>Removes a variable from the native environment as well as the managed one.</summary>
    void RemoveEnvironmentVariable(string name);

    /// <summary>The signal number of SIGTERM on this OS.</summary>
    int TerminateSignal { get; }

    /// <summary>The signal number of SIGKILL on this OS.</summary>
    int KillSignal { get; }
}

/// <summary>A byte stream between a parent and its child: the bootstrap payload goes down, error reports come up.</summary>
internal interface IControlChannel : IDisposable
{
    /// <summary>Writes all of <paramref name="data"/> with <paramref name="handles"/> attached, blocking while the peer is slow; false if the peer is gone.</summary>
    bool TrySendAll(ReadOnlySpan<byte> data, IReadOnlyList<SafeHandle>? handles = null);

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes, adding descriptors that came with them to <paramref name="handles"/>; false at end of stream.</summary>
    bool TryReadExactly(Span<byte> buffer, List<int>? handles = null);

    /// <summary>Closes a descriptor received through <see cref="TryReadExactly"/> that nothing took.</summary>
    void CloseReceived(int handle);

    /// <summary>Blocks until the peer closes its end (or the channel fails), without reading anything.</summary>
    void WaitForHangUp();

    /// <summary>Busy-waits up to <paramref name="limit"/> until something can be read (or the peer is gone), without sleeping; false if nothing came.</summary>
    bool SpinUntilReadable(TimeSpan limit);

    /// <summary>Stops the channel from being inherited by processes this one starts.</summary>
    void MarkNonInheritable();
}

/// <summary>A child started by <see cref="IProcessBackend.Launch"/>.</summary>
internal sealed class LaunchedChild(int pid, SafeHandle sentinel, IControlChannel control)
{
    /// <summary>The OS process id.</summary>
    public int Pid { get; } = pid;

    /// <summary>Readable once the child has ended (a pidfd on Linux).</summary>
    public SafeHandle Sentinel { get; } = sentinel;

    /// <summary>The parent's end of the control channel.</summary>
    public IControlChannel Control { get; } = control;

    /// <summary>0.. for a normal exit, −N for death by signal N; set before the exit callback runs.</summary>
    public int ExitCode { get; private set; }

    /// <summary>Everything the child wrote on its control channel.</summary>
    public MemoryStream Received { get; } = new();

    private readonly System.Threading.Lock _gate = new();
    private Action<LaunchedChild>? _onExit;
    private bool _exited;
    private bool _claimed;

    /// <summary>Marks a spare child as taken for a start request; false if it has already ended.</summary>
    public bool TryClaim()
    {
        lock (_gate)
        {
            if (_exited)
            {
                return false;
            }

            _claimed = true;
            return true;
        }
    }

    /// <summary>Whether <see cref="TryClaim"/> succeeded: the child carries a start request and its sentinel belongs to that process.</summary>
    public bool Claimed
    {
        get
        {
            lock (_gate)
            {
                return _claimed;
            }
        }
    }

    /// <summary>Makes <paramref name="onExit"/> the code told of the child's end; false if it has already ended (then <see cref="ExitCode"/> and <see cref="Received"/> are final).</summary>
    public bool TryAssignOwner(Action<LaunchedChild> onExit)
    {
        lock (_gate)
        {
            if (_exited)
            {
                return false;
            }

            _onExit = onExit;
            return true;
        }
    }

    /// <summary>Runs the exit handler once, with <paramref name="exitCode"/>: called by the watcher when the child has been reaped.</summary>
    public void NotifyExited(int exitCode)
    {
        Action<LaunchedChild>? onExit;
        lock (_gate)
        {
            if (_exited)
            {
                return;
            }

            _exited = true;
            ExitCode = exitCode;
            onExit = _onExit;
        }

        onExit?.Invoke(this);
    }
}

/// <summary>Chooses the backend for the running OS.</summary>
internal static class ProcessBackend
{
    private static IProcessBackend? s_current;

    /// <summary>The backend for this OS; throws <see cref="PlatformNotSupportedException"/> where there is none yet.</summary>
    public static IProcessBackend Current => s_current ??= Create();

    private static Linux.LinuxProcessBackend Create()
    {
        if (OperatingSystem.IsLinux())
        {
            return new Linux.LinuxProcessBackend();
        }

        throw new PlatformNotSupportedException(
            $"Multiprocessing has no process backend for {RuntimeInformation.OSDescription} yet; Linux is supported.");
    }
}
