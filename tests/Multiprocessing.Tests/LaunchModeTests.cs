using System.Globalization;
using System.Text.RegularExpressions;

namespace Multiprocessing.Tests;

/// <summary>Runs a real app (tests/Multiprocessing.Tests.App) in each way a .NET program is launched.</summary>
public sealed partial class LaunchModeTests
{
    private static readonly string s_appDirectory = AppContext.BaseDirectory.Replace(
        Path.Combine("Multiprocessing.Tests", "bin"), Path.Combine("Multiprocessing.Tests.App", "bin"), StringComparison.Ordinal);

    private static readonly string s_appDll = Path.Combine(s_appDirectory, "Multiprocessing.Tests.App.dll");

    private static readonly string s_dotnet = Environment.ProcessPath!.EndsWith("dotnet", StringComparison.Ordinal) ? Environment.ProcessPath : "dotnet";

    private static string Configuration => new DirectoryInfo(s_appDirectory).Parent!.Name;

    private static void AssertChildRanWithoutMain((int ExitCode, string Output, string Error) result)
    {
        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Output}{result.Error}");
        Match main = MainLine().Match(result.Output);
        Assert.True(main.Success, result.Output);
        Assert.Single(MainLine().Matches(result.Output)); // Main ran in the parent only
        Assert.Contains($"CHILD Process-1 parent={main.Groups[1].Value}", result.Output, StringComparison.Ordinal);
        Assert.Contains("EXIT 0", result.Output, StringComparison.Ordinal);
    }

    [GeneratedRegex(@"MAIN (\d+)")]
    private static partial Regex MainLine();

    [Fact]
    public void Works_under_dotnet_app_dll() => AssertChildRanWithoutMain(Bounded.Command(s_dotnet, s_appDll, "hello"));

    [Fact]
    public void Works_under_the_apphost() => AssertChildRanWithoutMain(Bounded.Command(Path.Combine(s_appDirectory, "Multiprocessing.Tests.App"), "hello"));

    [Fact]
    public void Works_under_dotnet_run()
    {
        string project = Path.GetFullPath(Path.Combine(s_appDirectory, "..", "..", ".."));
        AssertChildRanWithoutMain(Bounded.Command(s_dotnet, "run", "--no-build", "-c", Configuration, "--project", project, "--", "hello"));
    }

    [Fact]
    public void Works_when_started_by_a_relative_path_and_the_directory_changes()
    {
        string parent = Path.GetDirectoryName(s_appDirectory.TrimEnd(Path.DirectorySeparatorChar))!;
        string relative = Path.Combine(Path.GetFileName(s_appDirectory.TrimEnd(Path.DirectorySeparatorChar)), "Multiprocessing.Tests.App.dll");
        AssertChildRanWithoutMain(Bounded.CommandIn(parent, s_dotnet, relative, "cwd"));
    }

    [Fact]
    public void Works_inside_the_test_host()
    {
        // This very test runs in the xunit test host; every other process test depends on it too.
        Assert.Contains("testhost", string.Join(' ', Environment.GetCommandLineArgs()), StringComparison.OrdinalIgnoreCase);
        var p = new Process(() => { });
        Bounded.Run(p);
        Assert.Equal(0, p.ExitCode);
    }

    [Fact]
    public void Without_startup_hooks_Start_says_what_to_add_to_Main()
    {
        (int exitCode, string output, string error) = Bounded.Command(s_dotnet, s_appDll, "no-hooks");
        Assert.True(exitCode == 0, output + error);
        Assert.Contains("REFUSED", output, StringComparison.Ordinal);
        Assert.Contains("Multiprocessing.Process.RunIfChild();", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_startup_hooks_RunIfChild_at_the_top_of_Main_runs_the_child() =>
        AssertChildRanWithoutMain(Bounded.Command(s_dotnet, s_appDll, "main-bootstrap"));

    [Fact]
    public void Unhandled_exception_text_goes_to_the_childs_stderr()
    {
        (int exitCode, string output, string error) = Bounded.Command(s_dotnet, s_appDll, "fail");
        Assert.Equal(0, exitCode);
        Assert.Contains("EXIT 1", output, StringComparison.Ordinal);
        Assert.Contains("Process Process-1:", error, StringComparison.Ordinal);
        Assert.Contains("System.InvalidOperationException: child failed on purpose", error, StringComparison.Ordinal);
    }

    [Fact]
    public void At_exit_daemon_children_are_terminated_and_others_joined()
    {
        using var scratch = new ScratchDirectory();
        (int exitCode, string output, string error) = Bounded.Command(s_dotnet, s_appDll, "lifetime", scratch.Path);
        Assert.True(exitCode == 0, output + error);
        int daemon = int.Parse(Regex.Match(output, @"DAEMON (\d+)").Groups[1].Value, CultureInfo.InvariantCulture);

        // The worker sleeps, then writes: it can only have written if the parent joined it before exiting.
        Assert.Equal("done", scratch.Read("worker.done"));
        Assert.Contains("AFTER daemon=-15 worker=0", output, StringComparison.Ordinal);
        Assert.True(Bounded.ProcessEnds(daemon, TimeSpan.Zero), "the daemon child outlived its parent's exit");
    }
}
