using System.Runtime.InteropServices;
using System.Text;
using Multiprocessing.Platform;
using Multiprocessing.Spawning;

namespace Multiprocessing;

/// <summary>
/// A process object: started, joined and inspected like a <see cref="Thread"/>, but its target runs in a child OS
/// process (Python's <c>multiprocessing.Process</c>).
/// </summary>
/// <remarks>
/// The target and everything it captures are copied into the child when <see cref="Start"/> is called, as Python
/// pickles <c>args</c>; changes the child makes to those copies are not seen by the parent. The child never runs the
/// application's <c>Main</c>. Subclasses may override <see cref="Run"/>; their fields are copied into the child too.
/// </remarks>
public class Process : IDisposable
{
    private enum Role : byte
    {
        Unstarted,
        Child,
        Current,
        Parent,
    }

    private static int s_childCounter;
    private static Process? s_current;

    private System.Threading.Lock _gate = new();
    private Role _role;
    private string _name = "";
    private bool _daemon;
    private int[] _identity = [];
    private Delegate? _target;
    private bool _starting;
    private LaunchedChild? _child;
    private SafeHandle? _sentinel;
    private int? _pid;
    private int? _exitCode;
    private RemoteException? _error;
    private bool _disposed;
    private TaskCompletionSource _exited = NewCompletion();

    /// <summary>Creates a process that will run <paramref name="target"/>.</summary>
    /// <param name="target">The code to run in the child; what it captures is copied there.</param>
    /// <param name="name">The process name; <c>Process-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon; a daemon creator makes daemons regardless.</param>
    public Process(Action target, string? name = null, bool daemon = false)
        : this(name, daemon) => _target = target ?? throw new ArgumentNullException(nameof(target));

    /// <summary>Creates a process that will run and await <paramref name="target"/>.</summary>
    /// <param name="target">The asynchronous code to run in the child; the child ends when its task completes.</param>
    /// <param name="name">The process name; <c>Process-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon; a daemon creator makes daemons regardless.</param>
    public Process(Func<Task> target, string? name = null, bool daemon = false)
        : this(name, daemon) => _target = target ?? throw new ArgumentNullException(nameof(target));

    /// <summary>Creates a process for a subclass that overrides <see cref="Run"/>.</summary>
    /// <param name="name">The process name; <c>Process-N</c> when null.</param>
    protected Process(string? name = null)
        : this(name, false)
    {
    }

    private protected Process(string? name, bool daemon)
    {
        Process creator = Current;
        int number = Interlocked.Increment(ref s_childCounter);
        _identity = [.. creator._identity, number];
        _name = name ?? "Process-" + string.Join(':', _identity);
        _daemon = daemon || creator._daemon;
    }

    /// <summary>For the library's own helper processes: they take no number from the <c>Process-N</c> sequence.</summary>
    private protected Process(string name, bool daemon, bool uncounted)
    {
        _ = uncounted;
        _identity = [.. Current._identity, 0];
        _name = name;
        _daemon = daemon;
    }

    private Process(Role role, string name, int pid, SafeHandle? sentinel)
    {
        _role = role;
        _name = name;
        _pid = pid;
        _sentinel = sentinel;
    }

    /// <summary>The process this code runs in: <c>MainProcess</c>, or in a child the process object it was started as.</summary>
    public static Process Current => s_current ??= new Process(Role.Current, "MainProcess", Environment.ProcessId, null);

    /// <summary>The process that started this one, or null in the main process.</summary>
    public static Process? Parent { get; private set; }

    /// <summary>Children of this process that have been started and have not ended yet.</summary>
    public static IReadOnlyList<Process> ActiveChildren() => ChildRegistry.Alive();

    /// <summary>
    /// For apps where startup hooks are disabled (trimmed builds): call this first thing in <c>Main</c>. In a child
    /// started by this library it runs the child's target and never returns; anywhere else it returns at once.
    /// </summary>
    /// <remarks>NativeAOT apps cannot start children yet; <see cref="Start"/> throws <see cref="PlatformNotSupportedException"/> there.</remarks>
    public static void RunIfChild() => ChildBootstrap.RunIfChild(calledFromMain: true);

    /// <summary>Whether a spare child is kept started and ready, so <see cref="Start"/> takes about a millisecond instead of a runtime start-up (Python's forkserver idea). On by default.</summary>
    public static bool KeepSpareChild
    {
        get => ChildLauncher.KeepSpare;
        set => ChildLauncher.KeepSpare = value;
    }

    /// <summary>The process name; not unique, used only for identification.</summary>
    public string Name
    {
        get => _name;
        set => _name = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Daemon processes are terminated when their creator exits normally; others are joined. Set before <see cref="Start"/>.</summary>
    public bool Daemon
    {
        get => _daemon;
        set
        {
            if (_role != Role.Unstarted || _starting)
            {
                throw new InvalidOperationException("Daemon can only be set before the process is started.");
            }

            _daemon = value;
        }
    }

    /// <summary>The OS process id, or null before <see cref="Start"/>.</summary>
    public int? Pid => _pid;

    /// <summary>Null while running (or before start); 0 after a normal return; n after <c>Environment.Exit(n)</c>; 1 after an unhandled exception; −N when killed by signal N.</summary>
    public int? ExitCode => _exitCode;

    /// <summary>The child's unhandled exception, once it has ended because of one.</summary>
    public RemoteException? Error => _error;

    /// <summary>Whether the process has been started and has not ended.</summary>
    public bool IsAlive => _role switch
    {
        Role.Current => true,
        Role.Child => !_exited.Task.IsCompleted,
        Role.Parent => _sentinel is not null && !ProcessBackend.Current.WaitSentinel(_sentinel, TimeSpan.Zero),
        _ => false,
    };

    /// <summary>An OS handle that becomes ready (readable) when the process ends; usable with <c>Connection.Wait</c>.</summary>
    public SafeHandle Sentinel
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _sentinel ?? throw new InvalidOperationException("The process has not been started, so it has no sentinel yet.");
        }
    }

    /// <summary>The code the child runs: the target given to the constructor. Override it in a subclass instead of passing a target.</summary>
    protected virtual void Run()
    {
        switch (_target)
        {
            case Action action:
                action();
                break;
            case Func<Task> asynchronous:
                asynchronous().GetAwaiter().GetResult();
                break;
        }
    }

    /// <summary>Starts the child. The target and its captured state are copied first; if they cannot cross, this throws and nothing is started.</summary>
    /// <exception cref="InvalidOperationException">The process was already started, or is not one this process can start.</exception>
    /// <exception cref="System.Runtime.Serialization.SerializationException">The target captures something that cannot cross a process boundary.</exception>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_role != Role.Unstarted || _starting)
            {
                throw new InvalidOperationException(_role is Role.Current or Role.Parent
                    ? $"'{_name}' is not a child of this process and cannot be started."
                    : $"Process '{_name}' has already been started; a process can only be started once.");
            }

            _starting = true;
        }

        try
        {
            ChildLauncher.NudgeSpare();
            var request = new StartRequest
            {
                ParentName = Current._name,
                ParentPid = Environment.ProcessId,
                SerializerType = Serialization.Serializer.Current is Serialization.BinarySerializer ? null : Serialization.Serializer.Current.GetType().AssemblyQualifiedName,
                Process = this,
            };
            byte[] frame = ChildProtocol.Frame(ChildProtocol.Start, request, out PreloadHint hint, out var handles, privileged: this, root: $"process '{_name}'");
            LaunchedChild child = ChildLauncher.Launch(frame, handles, OnExited);
            lock (_gate)
            {
                _child = child;
                _sentinel = child.Sentinel;
                _pid = child.Pid;
                _role = Role.Child;
            }

            if (!OutlivesParent)
            {
                ChildRegistry.Add(this);
                ChildLauncher.AfterStart(hint);
            }
        }
        finally
        {
            _starting = false;
        }
    }

    private void OnExited(LaunchedChild child)
    {
        try
        {
            _error = ReadErrorReport(child);
            _exitCode = child.ExitCode;
            ChildRegistry.Remove(this);
            lock (_gate)
            {
                if (_disposed)
                {
                    child.Sentinel.Dispose();
                }
            }
        }
        finally
        {
            // Whatever failed above, a joiner must not wait forever.
            _exitCode ??= child.ExitCode;
            _exited.TrySetResult();
        }
    }

    private static RemoteException? ReadErrorReport(LaunchedChild child)
    {
        RemoteException? error = null;
        foreach ((byte kind, byte[] body) in ChildProtocol.Parse(child.Received.ToArray()))
        {
            if (kind != ChildProtocol.Error)
            {
                continue;
            }

            try
            {
                error = Serialization.BinarySerializer.Default.Deserialize<RemoteException>(body);
            }
            catch (System.Runtime.Serialization.SerializationException ex)
            {
                error = new RemoteException(typeof(System.Runtime.Serialization.SerializationException).FullName!, "The child's error report could not be read: " + ex.Message, "", null);
            }
        }

        return error;
    }

    /// <summary>Waits until the process ends.</summary>
    public void Join() => Join(Timeout.InfiniteTimeSpan);

    /// <summary>Waits until the process ends or <paramref name="timeout"/> passes; returns whether it ended.</summary>
    /// <exception cref="InvalidOperationException">The process was never started, or it is the current process.</exception>
    public bool Join(TimeSpan timeout)
    {
        ValidateTimeout(timeout);
        switch (_role)
        {
            case Role.Child:
                // Task.Wait takes at most int.MaxValue milliseconds; anything longer is as good as forever.
                return _exited.Task.Wait(timeout.TotalMilliseconds >= int.MaxValue ? Timeout.InfiniteTimeSpan : timeout);
            case Role.Parent:
                return _sentinel is null || ProcessBackend.Current.WaitSentinel(_sentinel, timeout);
            case Role.Current:
                throw new InvalidOperationException("A process cannot join itself.");
            default:
                throw new InvalidOperationException($"Process '{_name}' cannot be joined before it is started.");
        }
    }

    /// <summary>Completes when the process ends.</summary>
    public Task JoinAsync(CancellationToken cancellationToken = default) => _role switch
    {
        Role.Child => _exited.Task.WaitAsync(cancellationToken),
        Role.Parent => Task.Run(() => Join(), cancellationToken),
        Role.Current => throw new InvalidOperationException("A process cannot join itself."),
        _ => throw new InvalidOperationException($"Process '{_name}' cannot be joined before it is started."),
    };

    /// <summary>Asks the process to end with SIGTERM (it ends with exit code −15; its <c>finally</c> blocks do not run). Does nothing once it has ended.</summary>
    public void Terminate() => SendSignal(ProcessBackend.Current.TerminateSignal);

    /// <summary>Ends the process with SIGKILL (exit code −9). Does nothing once it has ended.</summary>
    public void Kill() => SendSignal(ProcessBackend.Current.KillSignal);

    private void SendSignal(int signal)
    {
        if (_role != Role.Child)
        {
            throw new InvalidOperationException(_role == Role.Unstarted
                ? $"Process '{_name}' has not been started."
                : $"'{_name}' is not a child of this process.");
        }

        lock (_gate)
        {
            if (!_exited.Task.IsCompleted && !_sentinel!.IsClosed)
            {
                _ = ProcessBackend.Current.Signal(_sentinel, signal);
            }
        }
    }

    /// <summary>Releases the OS handles of a process that has ended; a running child is not stopped, and its handles are released when it ends.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases resources; see <see cref="Dispose()"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            if (_role == Role.Parent || (_role == Role.Child && _exited.Task.IsCompleted))
            {
                _sentinel?.Dispose();
            }
        }
    }

    /// <summary>Like Python's repr: name, pid, parent and state.</summary>
    public override string ToString()
    {
        var text = new StringBuilder("<Process name='").Append(_name).Append('\'');
        if (_pid is { } pid)
        {
            text.Append(" pid=").Append(pid);
        }

        switch (_role)
        {
            case Role.Unstarted:
                text.Append(" initial");
                break;
            case Role.Child when _exitCode is { } code:
                text.Append(" parent=").Append(Environment.ProcessId).Append(code == 0 ? " stopped" : $" stopped exitcode={code}");
                break;
            case Role.Child:
                text.Append(" parent=").Append(Environment.ProcessId).Append(" started");
                break;
            case Role.Current when Parent is { } parent:
                text.Append(" parent=").Append(parent._pid).Append(" started");
                break;
            default:
                text.Append(" started");
                break;
        }

        if (_daemon)
        {
            text.Append(" daemon");
        }

        return text.Append('>').ToString();
    }

    internal (string Name, bool Daemon, int[] Identity, Delegate? Target) SnapshotForChild() => (_name, _daemon, _identity, _target);

    internal void InitializeInChild(string name, bool daemon, int[] identity, Delegate? target)
    {
        _gate = new System.Threading.Lock();
        _exited = NewCompletion();
        _name = name;
        _daemon = daemon;
        _identity = identity;
        _target = target;
    }

    /// <summary>Makes this deserialized object the current process of a child, and records the parent.</summary>
    internal static void BecomeChild(Process self, string parentName, int parentPid)
    {
        self._role = Role.Current;
        self._pid = Environment.ProcessId;
        s_current = self;
        Parent = new Process(Role.Parent, parentName, parentPid, ProcessBackend.Current.OpenSentinel(parentPid));
    }

    internal void RunInChild() => Run();

    /// <summary>
    /// True for the library's own helpers that must outlive the process that started them (the shared memory tracker
    /// cleans up after it): they are neither joined nor terminated at its exit, and a parent's death does not end them.
    /// </summary>
    internal virtual bool OutlivesParent => false;

    internal bool HasEnded => _exited.Task.IsCompleted;

    private static TaskCompletionSource NewCompletion() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal static void ValidateTimeout(TimeSpan timeout)
    {
        if (timeout < TimeSpan.Zero && timeout != Timeout.InfiniteTimeSpan)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must be non-negative or Timeout.InfiniteTimeSpan.");
        }
    }
}
