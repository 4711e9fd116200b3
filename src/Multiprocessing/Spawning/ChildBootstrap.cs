using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Spawning;

/// <summary>
/// The child's side: before <c>Main</c> (from the startup hook) it reads its start request, becomes the process it
/// was started as, runs the target, reports an unhandled exception, and exits without running <c>Main</c>.
/// </summary>
internal static class ChildBootstrap
{
    private static int s_entered;

    // What the watchdog does when the parent hangs up depends on the start request, which may still be unread then.
    private const int Reading = 0, EndsWithParent = 1, OutlivesParent = 2, ParentGoneWhileReading = 3;
    private static int s_parentPolicy;

    public static bool MainCalledRunIfChild { get; private set; }

    /// <summary>How long a spare that was told a request is coming busy-waits for it before it sleeps again.</summary>
    private static readonly TimeSpan WakeSpin = TimeSpan.FromMilliseconds(2);

    /// <summary>How many methods of a preload hint this (spare) child looked up, compiled and bound before its start request (for tests).</summary>
    internal static int PreparedMethods { get; private set; }

    public static void RunIfChild(bool calledFromMain)
    {
        if (calledFromMain)
        {
            MainCalledRunIfChild = true;
        }

        string? fdText = Environment.GetEnvironmentVariable(ChildLauncher.ChildVariable);
        if (fdText is null || ParseDescriptor(fdText) is not int fd || Interlocked.Exchange(ref s_entered, 1) != 0)
        {
            return;
        }

        IProcessBackend backend = ProcessBackend.Current;
        RestoreEnvironment(backend);
        backend.RestoreDefaultTerminationSignal();
        IControlChannel control = backend.AdoptInheritedChannel(fd);
        control.MarkNonInheritable();

        // The watchdog only waits for the parent to hang up (it reads nothing), and ends this process at once then:
        // children never outlive their parent. The main thread reads its own request, so no hand-off wakes a thread.
        // The library's own helpers that must outlive their parent (the shared memory tracker) say so in the request;
        // if it is still being read, the main thread decides once it is.
        var watchdog = new Thread(() =>
        {
            backend.PrepareExit(); // while the main thread reads the request: off the path the parent waits on
            control.WaitForHangUp();
            if (Interlocked.CompareExchange(ref s_parentPolicy, ParentGoneWhileReading, Reading) == EndsWithParent)
            {
                backend.ExitImmediately(1);
            }
        })
        { IsBackground = true, Name = "Multiprocessing parent watchdog" };
        watchdog.Start();
        int exitCode;
        try
        {
            // Nothing may escape a startup hook: the runtime would go on to run Main.
            if (ReadUntilStart(control) is not { } start)
            {
                backend.ExitImmediately(1); // the parent went away before sending a request
                return;
            }

            StartRequest request = BinarySerializer.DeserializeWithHandles<StartRequest>(start.Body, start.Handles, control.CloseReceived);
            if (request.SerializerType is { } serializerType)
            {
                Serializer.Current = (ISerializer)Activator.CreateInstance(Type.GetType(serializerType, throwOnError: true)!)!;
            }

            bool outlives = request.Process.OutlivesParent;
            if (Interlocked.CompareExchange(ref s_parentPolicy, outlives ? OutlivesParent : EndsWithParent, Reading) == ParentGoneWhileReading && !outlives)
            {
                backend.ExitImmediately(1);
            }

            Process.BecomeChild(request.Process, request.ParentName, request.ParentPid);
            exitCode = RunTarget(request, control);
        }
        catch (Exception ex)
        {
            exitCode = Report(control, "Process", ex); // the request could not be read: a different build, a missing type, a bad frame…
        }

        if (ChildRegistry.EverStarted)
        {
            ChildRegistry.OnExit();
        }

        ListeningSockets.RemoveCreatedFiles(); // the socket files of listeners the target never disposed
        Barrier.DetachAllAtExit(); // a normal end must not look like a dead party to the barriers' other users
        backend.ExitAfterTarget(exitCode, control);
    }

    /// <summary>Parses the descriptor number by hand: any culture-aware parsing loads ICU, which costs a cold child milliseconds.</summary>
    private static int? ParseDescriptor(string text)
    {
        if (text.Length is 0 or > 9)
        {
            return null;
        }

        int value = 0;
        foreach (char c in text)
        {
            if (c is < '0' or > '9')
            {
                return null;
            }

            value = (value * 10) + (c - '0');
        }

        return value;
    }

    private static void RestoreEnvironment(IProcessBackend backend)
    {
        string? previous = Environment.GetEnvironmentVariable(ChildLauncher.PreviousHooksVariable);
        backend.RemoveEnvironmentVariable(ChildLauncher.ChildVariable);
        backend.RemoveEnvironmentVariable(ChildLauncher.PreviousHooksVariable);
        if (previous is null)
        {
            backend.RemoveEnvironmentVariable(ChildLauncher.StartupHooksVariable);
        }
        else
        {
            Environment.SetEnvironmentVariable(ChildLauncher.StartupHooksVariable, previous);
        }
    }

    /// <summary>Handles preload hints until the start request arrives; returns its body, or null if the parent went away first.</summary>
    private static (byte[] Body, List<int> Handles)? ReadUntilStart(IControlChannel control)
    {
        while (ChildProtocol.Read(control) is { } frame)
        {
            if (frame.Kind == ChildProtocol.Start)
            {
                return (frame.Body, frame.Handles);
            }

            if (frame.Kind == ChildProtocol.Wake)
            {
                _ = control.SpinUntilReadable(WakeSpin); // the request follows in a fraction of a millisecond
                continue;
            }

            if (frame.Kind == ChildProtocol.Preload)
            {
                try
                {
                    frame.Handles.ForEach(control.CloseReceived);
                    Preload(BinarySerializer.Default.Deserialize<PreloadHint>(frame.Body));
                }
                catch (Exception ex)
                {
                    // Only a hint: the start request reports real failures.
                    System.Diagnostics.Debug.WriteLine("Multiprocessing preload failed: " + ex);
                }
            }
        }

        return null;
    }

    /// <summary>Builds converters for the types the next request will likely hold (reading the hint already loaded their assemblies) and runs the start path once, so a spare starts its target warm.</summary>
    private static void Preload(PreloadHint hint)
    {
        foreach (Type type in hint.Types)
        {
            _ = Converters.For(type);
        }

        for (int i = 0; i < hint.Tokens.Length; i++)
        {
            PrepareMethod(hint.DelegateTypes[i], hint.DeclaringTypes[i], hint.Modules[i], hint.Tokens[i], hint.Names[i]);
        }

        try
        {
            Warmup.Run();
        }
        catch (Exception ex)
        {
            // A failed warm-up only costs speed; the spare must stay usable.
            System.Diagnostics.Debug.WriteLine("Multiprocessing warm-up failed: " + ex);
        }
    }

    /// <summary>Looks up, compiles and binds a delegate's method the way the start request will (each step only warms a cache).</summary>
    private static void PrepareMethod(Type delegateType, Type declaring, Guid module, int token, string name)
    {
        try
        {
            System.Reflection.MethodInfo method = MethodResolver.Resolve(declaring, module, token, [], name);
            if (!declaring.ContainsGenericParameters)
            {
                System.Runtime.CompilerServices.RuntimeHelpers.PrepareMethod(method.MethodHandle, declaring.IsConstructedGenericType ? [.. Array.ConvertAll(declaring.GetGenericArguments(), t => t.TypeHandle)] : null);
            }

            object? target = null;
            if (!method.IsStatic)
            {
                if (!ClosureAnalysis.IsClosure(declaring))
                {
                    return; // a user's type: do not make an unconstructed one (its finalizer would run on it)
                }

                target = System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(declaring);
            }

            _ = Delegate.CreateDelegate(delegateType, target, method);
            PreparedMethods++;
        }
        catch (Exception ex)
        {
            // Only a hint: the start request resolves the method for real and reports any failure.
            System.Diagnostics.Debug.WriteLine("Multiprocessing preload of a method failed: " + ex.Message);
        }
    }

    private static int RunTarget(StartRequest request, IControlChannel control)
    {
        try
        {
            request.Process.RunInChild();
            return 0;
        }
        catch (Exception ex)
        {
            return Report(control, request.Process.Name, ex);
        }
    }

    private static int Report(IControlChannel control, string name, Exception exception)
    {
        Console.Error.WriteLine($"Process {name}:{Environment.NewLine}{exception}");
        try
        {
            _ = control.TrySendAll(ChildProtocol.Frame(ChildProtocol.Error, RemoteException.FromException(exception)));
        }
        catch (Exception reportFailure)
        {
            Console.Error.WriteLine($"Multiprocessing: the error could not be reported to the parent: {reportFailure.Message}");
        }

        return 1;
    }
}

/// <summary>Runs the start path once on a dummy process, so a spare child has it compiled before its real request arrives.</summary>
internal static class Warmup
{
    public static void Run()
    {
        int captured = 0;
        var dummy = (Process)System.Runtime.CompilerServices.RuntimeHelpers.GetUninitializedObject(typeof(Process));
        dummy.InitializeInChild("warmup", false, [0], () => captured++);
        var request = new StartRequest { ParentName = "warmup", ParentPid = 0, Process = dummy };
        byte[] frame = ChildProtocol.Frame(ChildProtocol.Start, request, privileged: dummy);
        foreach ((byte _, byte[] body) in ChildProtocol.Parse(frame))
        {
            BinarySerializer.Default.Deserialize<StartRequest>(body).Process.RunInChild();
        }

        _ = ChildProtocol.Frame(ChildProtocol.Error, RemoteException.FromException(new InvalidOperationException("warmup")));

        // The way out, with nothing to do yet: each first call costs tens of microseconds the parent would wait for.
        _ = ChildRegistry.EverStarted;
        ListeningSockets.RemoveCreatedFiles();
        Barrier.DetachAllAtExit();
    }
}
