using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using OsProcess = System.Diagnostics.Process;

namespace Multiprocessing.Tests;

/// <summary>Runs blocking calls on their own thread and waits for them a bounded time, so a hang fails the test.</summary>
internal static class Within
{
    /// <summary>Starts <paramref name="action"/> on a dedicated thread (blocking calls must not starve the pool).</summary>
    public static Task<T> Start<T>(Func<T> action) =>
        Task.Factory.StartNew(action, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    /// <summary>Runs <paramref name="action"/> and returns its result, or throws what it threw; TimeoutException after <see cref="Bounded.Long"/>.</summary>
    public static T Call<T>(Func<T> action) => Await(Start(action));

    /// <summary>As <see cref="Call{T}(Func{T})"/> for an action.</summary>
    public static void Call(Action action) => Await(Start(() => { action(); return true; }));

    /// <summary>Waits for <paramref name="task"/> at most <see cref="Bounded.Long"/>; rethrows its own exception.</summary>
    public static T Await<T>(Task<T> task) => task.WaitAsync(Bounded.Long).GetAwaiter().GetResult();
}

/// <summary>
/// A Python interpreter running a script in the background, for interoperability tests: its stdout is read line by
/// line (a server announces itself with a line such as <c>READY 40123</c>), and it is killed on Dispose if still running.
/// </summary>
internal sealed class PythonPeer : IDisposable
{
    private readonly OsProcess _process;
    private readonly BlockingCollection<string> _lines = [];
    private readonly StringBuilder _error = new();
    private readonly List<string> _seen = [];

    private PythonPeer(OsProcess process) => _process = process;

    /// <summary>The interpreters to test against: <c>python3</c>, plus any in MP_TEST_PYTHONS (separated by the path separator) and pyenv's 3.12 and later, which speak the modern handshake.</summary>
    public static IReadOnlyList<string> Interpreters()
    {
        var found = new List<string> { "python3" };
        string? extra = Environment.GetEnvironmentVariable("MP_TEST_PYTHONS");
        if (!string.IsNullOrWhiteSpace(extra))
        {
            found.AddRange(extra.Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }

        string versions = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".pyenv", "versions");
        if (Directory.Exists(versions))
        {
            foreach (string directory in Directory.GetDirectories(versions, "3.1*").Order(StringComparer.Ordinal))
            {
                string python = Path.Combine(directory, "bin", "python3");
                if (Version.TryParse(Path.GetFileName(directory), out Version? version) && version >= new Version(3, 12) && File.Exists(python))
                {
                    found.Add(python);
                }
            }
        }

        return found.Distinct().ToList();
    }

    /// <summary>Starts <c><paramref name="interpreter"/> -c <paramref name="script"/> <paramref name="arguments"/></c>.</summary>
    public static PythonPeer Start(string interpreter, string script, params string[] arguments)
    {
        var info = new ProcessStartInfo(interpreter)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        info.ArgumentList.Add("-c");
        info.ArgumentList.Add(script);
        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        info.Environment["PYTHONUNBUFFERED"] = "1";
        var process = new OsProcess { StartInfo = info };
        var peer = new PythonPeer(process);
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                peer._lines.CompleteAdding();
            }
            else
            {
                peer._lines.Add(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (peer._error)
                {
                    peer._error.AppendLine(e.Data);
                }
            }
        };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return peer;
    }

    /// <summary>What the script wrote to stderr so far.</summary>
    public string Error
    {
        get
        {
            lock (_error)
            {
                return _error.ToString();
            }
        }
    }

    /// <summary>The next line of stdout; fails the test if none comes within <paramref name="timeout"/> (default <see cref="Bounded.Long"/>).</summary>
    public string ReadLine(TimeSpan? timeout = null)
    {
        if (_lines.TryTake(out string? line, timeout ?? Bounded.Long))
        {
            _seen.Add(line);
            return line;
        }

        throw new TimeoutException($"python wrote no line{(_lines.IsCompleted ? " (its output ended)" : "")}; lines so far: [{string.Join(" | ", _seen)}]; stderr: {Error}");
    }

    /// <summary>Reads lines until one starts with <paramref name="prefix"/>; returns the rest of it.</summary>
    public string Expect(string prefix)
    {
        while (true)
        {
            string line = ReadLine();
            if (line.StartsWith(prefix, StringComparison.Ordinal))
            {
                return line[prefix.Length..].Trim();
            }
        }
    }

    /// <summary>Waits for the script to end (bounded); returns its exit code and the stdout lines not yet read.</summary>
    public (int ExitCode, List<string> Lines) WaitForExit()
    {
        if (!_process.WaitForExit(Bounded.Long))
        {
            throw new TimeoutException($"python did not exit; stderr: {Error}");
        }

        _process.WaitForExit(); // drains the asynchronous readers
        var rest = new List<string>();
        while (_lines.TryTake(out string? line, TimeSpan.FromSeconds(5)))
        {
            rest.Add(line);
        }

        return (_process.ExitCode, rest);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
                _process.WaitForExit(Bounded.Long);
            }
        }
        catch (InvalidOperationException)
        {
            // never started, or already reaped
        }

        _process.Dispose();
        _lines.Dispose();
    }
}
