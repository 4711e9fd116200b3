// Started by the tests in each launch mode (dotnet app.dll, the apphost, dotnet run) to show that children work
// without Main running in them: Main prints MAIN once; the child prints its own line.
using mp = Multiprocessing;

string mode = args.Length > 0 ? args[0] : "hello";
if (mode == "main-bootstrap")
{
    // What a trimmed or NativeAOT app does: children come through Main, so this must be its first statement.
    mp.Process.RunIfChild();
}

Console.WriteLine("MAIN " + Environment.ProcessId);
if (mode is "no-hooks" or "main-bootstrap")
{
    // Pretend startup hooks are trimmed away, as StartupHookSupport=false does.
    AppContext.SetSwitch("System.StartupHookProvider.IsSupported", false);
}

switch (mode)
{
    case "no-hooks":
        try
        {
            new mp.Process(() => { }).Start();
            Console.WriteLine("STARTED");
        }
        catch (InvalidOperationException ex)
        {
            Console.WriteLine("REFUSED " + ex.Message);
        }

        break;
    case "cwd":
        // Started with a relative path to this dll: children must still find it after the directory changes.
        Environment.CurrentDirectory = Path.GetTempPath();
        goto case "hello";
    case "hello":
    case "main-bootstrap":
        var p = new mp.Process(() => Console.WriteLine($"CHILD {mp.Process.Current.Name} parent={mp.Process.Parent?.Pid}"));
        p.Start();
        p.Join();
        Console.WriteLine("EXIT " + p.ExitCode);
        break;
    case "shm-no-hooks":
        // Where no child can be started, a tracked block is refused (and nothing is left); an untracked one works.
        AppContext.SetSwitch("System.StartupHookProvider.IsSupported", false);
        string refusedName = "mp-test-nohooks-" + Environment.ProcessId;
        try
        {
            _ = new mp.SharedMemory(refusedName, create: true, size: 64);
            Console.WriteLine("CREATED");
        }
        catch (InvalidOperationException ex)
        {
            Console.WriteLine("REFUSED " + ex.Message);
        }

        Console.WriteLine(File.Exists("/dev/shm/" + refusedName) ? "LEFT" : "GONE");
        var untracked = new mp.SharedMemory(create: true, size: 64, track: false);
        Console.WriteLine("UNTRACKED " + untracked.Size);
        untracked.Unlink();
        break;
    case "shm-killed":
        // A main process that creates named blocks and is then killed: its tracker must remove the tracked one.
        var tracked = new mp.SharedMemory(create: true, size: 4096);
        var kept = new mp.SharedMemory(create: true, size: 4096, track: false);
        Console.WriteLine($"BLOCKS {tracked.Name} {kept.Name}");
        Thread.Sleep(Timeout.Infinite);
        break;
    case "fail":
        var failing = new mp.Process(() => throw new InvalidOperationException("child failed on purpose"));
        failing.Start();
        failing.Join();
        Console.WriteLine("EXIT " + failing.ExitCode);
        break;
    case "lifetime":
        // Leaves Main without joining: the exit handler must terminate the daemon child and join the other one.
        string dir = args[1];
        var daemon = new mp.Process(() => Thread.Sleep(60_000), daemon: true);
        var worker = new mp.Process(() => { Thread.Sleep(300); File.WriteAllText(Path.Combine(dir, "worker.done"), "done"); });
        daemon.Start();
        worker.Start();
        Console.WriteLine($"DAEMON {daemon.Pid}");

        // Registered after the library's own exit handler, so it runs after it and sees what it did.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Console.WriteLine($"AFTER daemon={daemon.ExitCode} worker={worker.ExitCode}");
        break;
}
