using System.Globalization;
using System.Reflection;
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

    public static bool MainCalledRunIfChild { get; private set; }

    public static void RunIfChild(bool calledFromMain)
    {
        if (calledFromMain)
        {
            MainCalledRunIfChild = true;
        }

        string? fdText = Environment.GetEnvironmentVariable(ChildLauncher.ChildVariable);
        if (fdText is null || !int.TryParse(fdText, NumberStyles.None, CultureInfo.InvariantCulture, out int fd)
            || Interlocked.Exchange(ref s_entered, 1) != 0)
        {
            return;
        }

        IProcessBackend backend = ProcessBackend.Current;
        RestoreEnvironment(backend);
        backend.RestoreDefaultTerminationSignal();
        IControlChannel control = backend.AdoptInheritedChannel(fd);
        control.MarkNonInheritable();

        StartRequest? request = ReadStartRequest(control, out Exception? failure);
        if (request is null && failure is null)
        {
            backend.ExitImmediately(1); // the parent went away before sending anything
        }

        var watchdog = new Thread(() =>
        {
            control.WaitForEndOfStream();
            backend.ExitImmediately(1); // the parent died: never outlive it
        })
        { IsBackground = true, Name = "Multiprocessing parent watchdog" };
        watchdog.Start();

        int exitCode = request is null ? Report(control, "Process", failure!) : RunTarget(request, control);
        ChildRegistry.OnExit();
        _ = control.TrySendAll(ChildProtocol.ExitFrame(exitCode));
        backend.ExitImmediately(exitCode);
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

    private static StartRequest? ReadStartRequest(IControlChannel control, out Exception? failure)
    {
        failure = null;
        try
        {
            while (ChildProtocol.Read(control) is { } frame)
            {
                if (frame.Kind == ChildProtocol.Preload)
                {
                    Preload(BinarySerializer.Default.Deserialize<string[]>(frame.Body));
                    continue;
                }

                var request = BinarySerializer.Default.Deserialize<StartRequest>(frame.Body);
                if (request.SerializerType is { } serializerType)
                {
                    Serializer.Current = (ISerializer)Activator.CreateInstance(Type.GetType(serializerType, throwOnError: true)!)!;
                }

                Process.BecomeChild(request.Process, request.ParentName, request.ParentPid);
                return request;
            }
        }
        catch (Exception ex)
        {
            failure = ex;
        }

        return null;
    }

    /// <summary>Loads what the next target will need and runs the deserializer once, so a spare starts its target warm.</summary>
    private static void Preload(string[] assemblies)
    {
        foreach (string name in assemblies)
        {
            try
            {
                _ = Assembly.Load(new AssemblyName(name));
            }
            catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
            {
                // Only a hint: the start request will report a real failure.
            }
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
        var received = new MemoryStream();
        received.Write(ChildProtocol.ExitFrame(0));
        _ = ChildProtocol.FindExit(received);
        _ = ChildRegistry.Alive();
    }
}
