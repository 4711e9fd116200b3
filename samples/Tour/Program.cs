// A tour of Multiprocessing for .NET: the examples of Python's processing/multiprocessing documents, in C#.
// Run it with: dotnet run --project samples/Tour
using mp = Multiprocessing;

namespace Tour;

internal static class Program
{
    // Python:  def f(name): print('hello', name)
    private static void F(string name) => Console.WriteLine($"hello {name}");

    // Python:  def sleeper(name, seconds): print pid, parent pid, then sleep
    private static void Sleeper(string name, double seconds)
    {
        Console.WriteLine($"Process ID# {Environment.ProcessId}");
        Console.WriteLine($"Parent Process ID# {mp.Process.Parent?.Pid}");
        Console.WriteLine($"{name} will sleep for {seconds} seconds");
        Thread.Sleep(TimeSpan.FromSeconds(seconds));
    }

    private static void Main()
    {
        Section("Process follows the API of Thread: p = Process(target=f, args=('bob',)); p.start(); p.join()");
        var p = new mp.Process<string>(F, "bob");
        p.Start();
        p.Join();

        Section("A lambda may capture locals: they are copied into the child");
        string greeting = "hello world";
        var lambda = new mp.Process(() => Console.WriteLine($"{greeting} from {mp.Process.Current.Name} (pid {Environment.ProcessId})"));
        lambda.Start();
        lambda.Join();

        Section("The sleeper: pids and parent pids");
        var childProc = new mp.Process<string, double>(Sleeper, "bob", 0.5);
        childProc.Start();
        Console.WriteLine("in parent process after child process start");
        Console.WriteLine("parent process about to join child process");
        childProc.Join();
        Console.WriteLine("in parent process after child process join");
        Console.WriteLine($"the parent's parent process: {ParentPid()}");

        Section("Subclass Process and override Run; its fields travel with it");
        var counter = new Counter("counter", 3);
        counter.Start();
        counter.Join();

        Section("Pipes: parent_conn, child_conn = Pipe(); the child sends, the parent receives");
        (mp.Connection parentConn, mp.Connection childConn) = mp.Pipe.Create();
        var sender = new mp.Process<mp.Connection>(SendHello, childConn);
        sender.Start();
        Console.WriteLine(parentConn.Recv<string>());
        sender.Join();

        Section("A duplex pipe: both ends send and receive; a child echoes until it reads null");
        (mp.Connection mine, mp.Connection theirs) = mp.Pipe.Create(duplex: true);
        var echo = new mp.Process(() =>
        {
            while (theirs.Recv<string?>() is { } text)
            {
                theirs.Send(text.ToUpperInvariant());
            }
        });
        echo.Start();
        foreach (string word in new[] { "one", "two", "three" })
        {
            mine.Send(word);
            Console.WriteLine($"sent {word}, got back {mine.Recv<string>()}");
        }

        mine.Send<string?>(null);
        echo.Join();

        Section("Exit codes and errors, as in Python");
        var ok = new mp.Process(() => { });
        var exits = new mp.Process(() => Environment.Exit(7));
        var fails = new mp.Process(() => throw new InvalidOperationException("something went wrong"));
        var sleeps = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        foreach (mp.Process each in new[] { ok, exits, fails, sleeps })
        {
            each.Start();
        }

        sleeps.Terminate();
        foreach (mp.Process each in new[] { ok, exits, fails, sleeps })
        {
            each.Join();
            Console.WriteLine($"{each.Name,-12} exit code {each.ExitCode,3}  {each.Error?.RemoteType}: {each.Error?.Message}");
        }

        Section("What cannot cross a process boundary is refused at Start(), naming the path");
        using var log = new StreamWriter(Stream.Null);
        try
        {
            new mp.Process(() => log.WriteLine("never")).Start();
        }
        catch (System.Runtime.Serialization.SerializationException ex)
        {
            Console.WriteLine(ex.Message);
        }

        PoolExamples.Run();
        ManagerExamples.Run();
        SynchronizationExamples.Run();
        SharedMemoryExamples.Run();
        QueueExamples.Run();
        DummyExamples.Run();
    }

    // Python:  def send(conn): conn.send("Hello World"); conn.close()
    private static void SendHello(mp.Connection conn)
    {
        conn.Send("Hello World");
        conn.Close();
    }

    private static int ParentPid() => int.Parse(File.ReadAllText("/proc/self/stat").Split(' ')[3], System.Globalization.CultureInfo.InvariantCulture);

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}

/// <summary>Python: class Counter(Process): def run(self): ...</summary>
internal sealed class Counter(string name, int limit) : mp.Process(name)
{
    private readonly int _limit = limit;

    protected override void Run()
    {
        for (int i = 1; i <= _limit; i++)
        {
            Console.WriteLine($"{Current.Name}: {i} of {_limit}");
        }
    }
}
