using System.Runtime.InteropServices;
using System.Text;
using Multiprocessing.Platform;

namespace Multiprocessing.Dummy;

/// <summary>
/// A thread with the API of <see cref="Multiprocessing.Process"/> (Python's <c>multiprocessing.dummy.Process</c>): the
/// target runs on a new thread of this process, and what it captures is shared by reference, not copied.
/// </summary>
/// <remarks>A thread cannot be killed: <see cref="Terminate"/> and <see cref="Kill"/> throw <see cref="PlatformNotSupportedException"/>.</remarks>
public class Process : IDisposable
{
    private static int s_counter;
    private static readonly Process s_main = new("MainProcess", null);

    [ThreadStatic]
    private static Process? t_current;

    private readonly object _gate = new();
    private readonly List<Process> _children = [];
    private readonly Delegate? _target;
    private readonly Process? _creator;
    private readonly TaskCompletionSource _ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private string _name;
    private bool _daemon;
    private Thread? _thread;
    private int? _exitCode;
    private RemoteException? _error;
    private bool _finished;
    private bool _disposed;
    private SafeHandle? _sentinel;

    /// <summary>Creates a thread-backed process that will run <paramref name="target"/>.</summary>
    /// <param name="target">The code to run on the new thread.</param>
    /// <param name="name">The name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether it runs as a background thread (one that does not keep the program alive).</param>
    public Process(Action target, string? name = null, bool daemon = false)
        : this(name, daemon) => _target = target ?? throw new ArgumentNullException(nameof(target));

    /// <summary>Creates a thread-backed process that will run and await <paramref name="target"/>.</summary>
    /// <param name="target">The asynchronous code to run; the process ends when its task completes.</param>
    /// <param name="name">The name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether it runs as a background thread.</param>
    public Process(Func<Task> target, string? name = null, bool daemon = false)
        : this(name, daemon) => _target = target ?? throw new ArgumentNullException(nameof(target));

    /// <summary>Creates a thread-backed process for a subclass that overrides <see cref="Run"/>.</summary>
    /// <param name="name">The name; <c>Thread-N</c> when null.</param>
    protected Process(string? name = null)
        : this(name, false)
    {
    }

    private protected Process(string? name, bool daemon)
    {
        _creator = Current;
        _name = name ?? "Thread-" + Interlocked.Increment(ref s_counter).ToString(System.Globalization.CultureInfo.InvariantCulture);
        _daemon = daemon || _creator._daemon;
    }

    private Process(string name, Process? creator)
    {
        _name = name;
        _creator = creator;
        _thread = Thread.CurrentThread;
    }

    /// <summary>The process object of the calling thread: the one it was started as, else <c>MainProcess</c>.</summary>
    public static Process Current => t_current ?? s_main;

    /// <summary>The process object that started the calling thread's, or null on a thread this library did not start.</summary>
    public static Process? Parent => t_current?._creator;

    /// <summary>Processes started by the calling thread's process that are still running.</summary>
    public static IReadOnlyList<Process> ActiveChildren()
    {
        Process current = Current;
        lock (current._gate)
        {
            current._children.RemoveAll(child => !child.IsAlive);
            return current._children.ToArray();
        }
    }

    /// <summary>Does nothing: threads need no child start-up (present so a program can switch namespaces).</summary>
    public static void RunIfChild()
    {
    }

    /// <summary>Ignored on threads (present so a program can switch namespaces).</summary>
    public static bool KeepSpareChild { get; set; }

    /// <summary>The name; not unique, used only for identification (also the thread's name).</summary>
    public string Name
    {
        get => _name;
        set => _name = value ?? throw new ArgumentNullException(nameof(value));
    }

    /// <summary>Whether it runs as a background thread, which does not keep the program alive. Set before <see cref="Start"/>.</summary>
    public bool Daemon
    {
        get => _daemon;
        set
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException("Daemon can only be set before the process is started.");
            }

            _daemon = value;
        }
    }

    /// <summary>This OS process's id once started (threads share it).</summary>
    public int? Pid => _thread is null ? null : Environment.ProcessId;

    /// <summary>Null until the thread ends; then 0, or 1 if the target threw.</summary>
    public int? ExitCode => _exitCode;

    /// <summary>The exception the target threw, if it did.</summary>
    public RemoteException? Error => _error;

    /// <summary>Whether the thread has started and not yet ended.</summary>
    public bool IsAlive => this == s_main || (_thread is not null && !_ended.Task.IsCompleted);

    /// <summary>
    /// An OS handle that becomes ready (readable) when the thread ends, as a process's sentinel does; usable with
    /// <see cref="Connection.Wait"/> of either namespace and with anything else that polls handles.
    /// </summary>
    /// <exception cref="InvalidOperationException">The thread has not been started (or this is the main thread's process, which has none).</exception>
    /// <exception cref="ObjectDisposedException">The process object was disposed.</exception>
    public SafeHandle Sentinel
    {
        get
        {
            lock (_gate)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                if (_thread is null || this == s_main)
                {
                    throw new InvalidOperationException("The process has not been started, so it has no sentinel yet.");
                }

                // Made on first use (most threads are never waited on this way), already set if the thread has ended.
                return _sentinel ??= ReadableSignal.Create(set: _finished);
            }
        }
    }

    /// <summary>Completes when the thread ends (what <see cref="Connection.Wait"/> watches).</summary>
    internal Task Ended => _ended.Task;

    /// <summary>Throws as <see cref="Sentinel"/> would, for a process that cannot be waited on; a thread needs no handle to be watched.</summary>
    internal SafeHandle? ThrowIfNotWaitable()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_thread is null || this == s_main)
            {
                throw new InvalidOperationException("The process has not been started, so it cannot be waited on yet.");
            }
        }

        return null;
    }

    /// <summary>The code the thread runs: the target given to the constructor. Override it in a subclass instead of passing a target.</summary>
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

    /// <summary>Starts the thread.</summary>
    /// <exception cref="InvalidOperationException">It was already started, or it stands for a thread this library did not start.</exception>
    public void Start()
    {
        lock (_gate)
        {
            if (_thread is not null)
            {
                throw new InvalidOperationException(this == s_main
                    ? $"'{_name}' is not a child of this process and cannot be started."
                    : $"Process '{_name}' has already been started; a process can only be started once.");
            }

            _thread = new Thread(Body) { Name = _name, IsBackground = _daemon };
        }

        Process creator = Current;
        lock (creator._gate)
        {
            creator._children.RemoveAll(child => !child.IsAlive);
            creator._children.Add(this);
        }

        _thread.Start();
    }

    /// <summary>Waits until the thread ends.</summary>
    public void Join() => Join(Timeout.InfiniteTimeSpan);

    /// <summary>Waits until the thread ends or <paramref name="timeout"/> passes; returns whether it ended.</summary>
    /// <exception cref="InvalidOperationException">It was never started, or it is the calling thread's own process.</exception>
    public bool Join(TimeSpan timeout)
    {
        int milliseconds = Waits.Milliseconds(timeout);
        ThrowIfNotJoinable();
        return _ended.Task.Wait(milliseconds, CancellationToken.None);
    }

    /// <summary>Completes when the thread ends.</summary>
    public Task JoinAsync(CancellationToken cancellationToken = default)
    {
        ThrowIfNotJoinable();
        return _ended.Task.WaitAsync(cancellationToken);
    }

    /// <summary>Always throws: a thread cannot be killed (Python's dummy processes have no <c>terminate</c> either).</summary>
    /// <exception cref="PlatformNotSupportedException">Always.</exception>
    public void Terminate() => throw NotKillable(nameof(Terminate));

    /// <summary>Always throws: a thread cannot be killed.</summary>
    /// <exception cref="PlatformNotSupportedException">Always.</exception>
    public void Kill() => throw NotKillable(nameof(Kill));

    /// <summary>Releases the <see cref="Sentinel"/>, if one was made; a running thread runs on.</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the <see cref="Sentinel"/>, if one was made; see <see cref="Dispose()"/>.</summary>
    protected virtual void Dispose(bool disposing)
    {
        if (!disposing)
        {
            return;
        }

        lock (_gate)
        {
            _disposed = true;
            _sentinel?.Dispose();
        }
    }

    /// <summary>Like Python's repr: name and state.</summary>
    public override string ToString()
    {
        var text = new StringBuilder("<Process name='").Append(_name).Append('\'');
        text.Append(_thread is null ? " initial" : _exitCode is { } code ? (code == 0 ? " stopped" : $" stopped exitcode={code}") : " started");
        if (_daemon)
        {
            text.Append(" daemon");
        }

        return text.Append(" thread>").ToString();
    }

    private static PlatformNotSupportedException NotKillable(string what)
        => new($"{what}: a Multiprocessing.Dummy process is a thread, and threads cannot be killed; signal it to stop (an Event or CancellationToken) and Join it.");

    private void ThrowIfNotJoinable()
    {
        if (this == Current)
        {
            throw new InvalidOperationException("A process cannot join itself.");
        }

        if (_thread is null || this == s_main)
        {
            throw new InvalidOperationException($"Process '{_name}' cannot be joined before it is started.");
        }
    }

    private void Body()
    {
        t_current = this;
        try
        {
            Run();
            _exitCode = 0;
        }
        catch (Exception ex)
        {
            _error = RemoteException.FromException(ex);
            _exitCode = 1;
            Console.Error.WriteLine($"Process {_name}:{Environment.NewLine}{ex}");
        }
        finally
        {
            t_current = null;
            SafeHandle? sentinel;
            lock (_gate)
            {
                _finished = true;
                sentinel = _sentinel;
            }

            if (sentinel is not null)
            {
                ReadableSignal.Set(sentinel); // before Join returns, so a joined thread's sentinel is always ready
            }

            _ended.TrySetResult();
        }
    }
}
