using System.Text.Json;
using OsProcess = System.Diagnostics.Process;

namespace Bench.Harness;

/// <summary>What a benchmark needs from its surroundings: where things are, how to run CPython, where notes go.</summary>
public sealed class BenchContext
{
    private readonly List<string> _notes = [];

    private BenchContext(string benchDirectory)
    {
        BenchDirectory = benchDirectory;
        PythonCommand = Environment.GetEnvironmentVariable("BENCH_PYTHON") is { Length: > 0 } python ? python : "python3";

        // `python3` may be a launcher script (pyenv's shim costs ~60 ms per start); multiprocessing's spawn children
        // use sys.executable, so the Python side runs on that too, and the interpreter start-up floor is measured fairly.
        (int exitCode, string output, _) = RunToEnd(PythonCommand, ["-c", "import sys; print(sys.executable)"]);
        string resolved = output.Trim();
        PythonExecutable = exitCode == 0 && File.Exists(resolved) ? resolved : PythonCommand;
    }

    /// <summary>The <c>bench/</c> folder of the repository.</summary>
    public string BenchDirectory { get; }

    /// <summary>The <c>bench/python/</c> folder holding the CPython side of each benchmark.</summary>
    public string PythonDirectory => Path.Combine(BenchDirectory, "python");

    /// <summary><c>python3</c>, or <c>$BENCH_PYTHON</c> when set.</summary>
    public string PythonCommand { get; }

    /// <summary>The interpreter <see cref="PythonCommand"/> runs (its <c>sys.executable</c>), used for every Python run.</summary>
    public string PythonExecutable { get; }

    /// <summary>Notes on method collected while the current benchmark ran.</summary>
    public IReadOnlyList<string> Notes => _notes;

    /// <summary>Finds <c>bench/</c> from the program's location (or the current directory).</summary>
    public static BenchContext Locate()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
        {
            for (DirectoryInfo? dir = new(start); dir is not null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "bench");
                if (Directory.Exists(Path.Combine(candidate, "python")) && Directory.Exists(Path.Combine(candidate, "Multiprocessing.Bench")))
                {
                    return new BenchContext(candidate);
                }
            }
        }

        throw new DirectoryNotFoundException("Cannot find the repository's bench/ folder (with bench/python/); run from the repository.");
    }

    /// <summary>Adds a note printed under the current benchmark's table.</summary>
    public void Note(string text) => _notes.Add(text);

    /// <summary>Forgets the notes of the previous benchmark.</summary>
    public void ClearNotes() => _notes.Clear();

    /// <summary>Runs <c>python3 bench/python/<paramref name="script"/> args…</c> and parses the one JSON document it prints.</summary>
    /// <exception cref="InvalidOperationException">The script failed or printed no JSON.</exception>
    public JsonDocument RunPython(string script, params string[] arguments) => RunPython([], script, arguments);

    /// <summary>Runs <c>python3 <paramref name="interpreterOptions"/>… bench/python/<paramref name="script"/> args…</c> (e.g. <c>-S</c>) and parses its JSON.</summary>
    /// <exception cref="InvalidOperationException">The script failed or printed no JSON.</exception>
    public JsonDocument RunPython(string[] interpreterOptions, string script, params string[] arguments)
    {
        ArgumentNullException.ThrowIfNull(interpreterOptions);
        ArgumentNullException.ThrowIfNull(arguments);
        string path = Path.Combine(PythonDirectory, script);
        return RunJson(PythonExecutable, script, [.. interpreterOptions, path, .. arguments]);
    }

    /// <summary>The <c>bench/c/</c> folder holding the C anchors.</summary>
    public string CDirectory => Path.Combine(BenchDirectory, "c");

    /// <summary>
    /// The path of the C anchor <c>bench/c/bin/<paramref name="name"/></c>, compiled first with <c>gcc -O2</c> from
    /// <c>bench/c/<paramref name="name"/>.c</c> when it is missing or older than its source.
    /// </summary>
    /// <exception cref="InvalidOperationException">gcc is missing or the compile failed.</exception>
    public string CProgram(string name)
    {
        string source = Path.Combine(CDirectory, name + ".c");
        string binary = Path.Combine(CDirectory, "bin", name);
        if (!File.Exists(binary) || File.GetLastWriteTimeUtc(binary) < File.GetLastWriteTimeUtc(source))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(binary)!);
            Console.Error.WriteLine($"Compiling {source} (gcc -O2)…");
            (int exitCode, string output, string error) result;
            try
            {
                result = RunToEnd("gcc", ["-O2", "-o", binary, source]);
            }
            catch (System.ComponentModel.Win32Exception ex)
            {
                throw new InvalidOperationException($"Compiling {source} needs gcc on the PATH: {ex.Message}", ex);
            }

            if (result.exitCode != 0 || !File.Exists(binary))
            {
                throw new InvalidOperationException($"Compiling {source} failed:{Environment.NewLine}{result.output}{result.error}");
            }
        }

        return binary;
    }

    /// <summary>Runs a program (e.g. a C anchor from <see cref="CProgram"/>) and parses the one JSON document it prints.</summary>
    /// <exception cref="InvalidOperationException">The program failed or printed no JSON.</exception>
    public static JsonDocument RunProgram(string fileName, params string[] arguments)
        => RunJson(fileName, string.Join(' ', arguments), arguments);

    private static JsonDocument RunJson(string fileName, string what, string[] arguments)
    {
        (int exitCode, string output, string error) = RunToEnd(fileName, arguments);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {what} failed with exit code {exitCode}:{Environment.NewLine}{error}");
        }

        try
        {
            return JsonDocument.Parse(output);
        }
        catch (JsonException ex)
        {
            throw new InvalidOperationException($"{fileName} {what} did not print JSON ({ex.Message}):{Environment.NewLine}{output}{error}", ex);
        }
    }

    /// <summary>Runs a program to its end and returns its exit code and everything it printed.</summary>
    public static (int ExitCode, string Output, string Error) RunToEnd(string fileName, IEnumerable<string> arguments, string? workingDirectory = null)
    {
        using OsProcess process = new() { StartInfo = StartInfo(fileName, arguments, workingDirectory) };
        process.Start();
        Task<string> error = process.StandardError.ReadToEndAsync();
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.GetAwaiter().GetResult());
    }

    /// <summary>
    /// Milliseconds from launching a program until it has exited (its output is read and discarded), with
    /// <see cref="System.Diagnostics.Process"/>: how long a user waits for <c>dotnet app.dll</c> or <c>python3 -c pass</c>.
    /// </summary>
    public static double TimeRun(string fileName, IEnumerable<string> arguments)
    {
        using OsProcess process = new() { StartInfo = StartInfo(fileName, arguments, null) };
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        process.Start();
        Task<string> error = process.StandardError.ReadToEndAsync();
        _ = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        double elapsed = System.Diagnostics.Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{fileName} {string.Join(' ', arguments)} failed with exit code {process.ExitCode}: {error.GetAwaiter().GetResult()}");
        }

        return elapsed;
    }

    private static System.Diagnostics.ProcessStartInfo StartInfo(string fileName, IEnumerable<string> arguments, string? workingDirectory)
    {
        var info = new System.Diagnostics.ProcessStartInfo(fileName)
        {
            UseShellExecute = false,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }

        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        return info;
    }
}
