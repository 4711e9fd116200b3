using System.Runtime.InteropServices;
using Multiprocessing.Platform;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Bounded waits, so a bug fails a test instead of hanging the run.</summary>
internal static class Bounded
{
    public static readonly TimeSpan Long = TimeSpan.FromSeconds(60);

    /// <summary>Runs a call that may block on a thread of its own and fails the test if it does not return within <see cref="Long"/>.</summary>
    public static T Call<T>(Func<T> call)
    {
        Task<T> task = Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(task.Wait(Long), $"the call did not return within {Long}");
        return task.Result;
    }

    /// <summary>Runs a call that should throw <typeparamref name="TException"/> on a thread of its own; fails the test if it does not end within <see cref="Long"/>.</summary>
    public static TException Throws<TException>(Action call)
        where TException : Exception
    {
        Task task = Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(((IAsyncResult)task).AsyncWaitHandle.WaitOne(Long), $"the call did not end within {Long}");
        return Assert.IsType<TException>(task.Exception?.InnerException, exactMatch: false);
    }

    public static void Join(mp.Process process) => Assert.True(process.Join(Long), $"{process.Name} did not end within {Long}");

    public static void Run(mp.Process process)
    {
        process.Start();
        Join(process);
    }

    /// <summary>Waits for a process we did not start (a grandchild) to end; true if it did within the timeout or was already gone.</summary>
    public static bool ProcessEnds(int pid, TimeSpan timeout)
    {
        using SafeHandle? sentinel = ProcessBackend.Current.OpenSentinel(pid);
        return sentinel is null || ProcessBackend.Current.WaitSentinel(sentinel, timeout);
    }

    /// <summary>Runs an external command and returns its exit code, stdout and stderr; kills it and fails if it takes over two minutes.</summary>
    public static (int ExitCode, string Output, string Error) Command(string file, params string[] arguments) => CommandIn(null, file, arguments);

    /// <summary>As <see cref="Command"/>, in <paramref name="workingDirectory"/>.</summary>
    public static (int ExitCode, string Output, string Error) CommandIn(string? workingDirectory, string file, params string[] arguments)
    {
        var info = new System.Diagnostics.ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (workingDirectory is not null)
        {
            info.WorkingDirectory = workingDirectory;
        }

        foreach (string argument in arguments)
        {
            info.ArgumentList.Add(argument);
        }

        TimeSpan limit = TimeSpan.FromSeconds(120);
        using var process = System.Diagnostics.Process.Start(info)!;
        Task<string> output = process.StandardOutput.ReadToEndAsync();
        Task<string> error = process.StandardError.ReadToEndAsync();

        // Output ends only when every holder of the pipes is gone, children included: a leftover child must fail the test, not hang it.
        if (!process.WaitForExit(limit) || !Task.WaitAll([output, error], limit))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {string.Join(' ', arguments)} did not finish, or left a process holding its output");
        }

        return (process.ExitCode, output.Result, error.Result);
    }
}

/// <summary>A scratch directory children write their observations into.</summary>
internal sealed class ScratchDirectory : IDisposable
{
    public ScratchDirectory() => Directory.CreateDirectory(Path);

    public string Path { get; } = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "mp-tests-" + Guid.NewGuid().ToString("N"));

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public string Read(string name) => System.IO.File.ReadAllText(File(name));

    public void Dispose() => Directory.Delete(Path, recursive: true);
}
