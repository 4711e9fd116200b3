namespace Multiprocessing.Platform.Linux;

/// <summary>
/// Files a .NET runtime creates and removes only on an orderly shutdown: the diagnostic server's socket,
/// <c>$TMPDIR/dotnet-diagnostic-{pid}-{start time}-socket</c>, and the debugger transport's FIFOs,
/// <c>$TMPDIR/clr-debug-pipe-{pid}-{start time}-in</c> and <c>-out</c>. Children end with _exit or by a signal, so they are removed here.
/// </summary>
internal static class RuntimeLeftovers
{
    /// <summary>Removes what the runtime of process <paramref name="pid"/> left; it must still exist (running or a zombie) so its pid is not reused.</summary>
    public static void Remove(int pid)
    {
        try
        {
            string? startTime = StartTime(pid);
            if (startTime is null)
            {
                return;
            }

            string directory = Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } tmp ? tmp : "/tmp";
            _ = LibC.unlink(Path.Combine(directory, $"dotnet-diagnostic-{pid}-{startTime}-socket"));
            _ = LibC.unlink(Path.Combine(directory, $"clr-debug-pipe-{pid}-{startTime}-in"));
            _ = LibC.unlink(Path.Combine(directory, $"clr-debug-pipe-{pid}-{startTime}-out"));
        }
        catch (IOException)
        {
            // Gone already, or never created (diagnostics disabled): nothing to remove.
        }
    }

    /// <summary>Field 22 of /proc/pid/stat (start time in clock ticks), which the runtime uses to tell processes with the same pid apart.</summary>
    private static string? StartTime(int pid)
    {
        string stat = File.ReadAllText($"/proc/{pid}/stat");
        int afterName = stat.LastIndexOf(')'); // the name may contain spaces and parentheses
        if (afterName < 0)
        {
            return null;
        }

        string[] fields = stat[(afterName + 2)..].Split(' ');
        return fields.Length > 19 ? fields[19] : null; // fields[0] is field 3 (state)
    }
}
