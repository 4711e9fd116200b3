using System.Runtime.InteropServices;
using System.Text;

namespace Multiprocessing.Platform.Linux;

/// <summary>
/// Files a .NET runtime creates and removes only on an orderly shutdown: the diagnostic server's socket,
/// <c>$TMPDIR/dotnet-diagnostic-{pid}-{start time}-socket</c>, and the debugger transport's FIFOs,
/// <c>$TMPDIR/clr-debug-pipe-{pid}-{start time}-in</c> and <c>-out</c>. Children end with _exit or by a signal, so they are removed here.
/// </summary>
/// <remarks>
/// Every child runs this on its way out, so it works on bytes with plain system calls: reading <c>/proc</c> through
/// <c>File</c> and building the names with strings cost a child about 2 ms of first-use work, all of it between its
/// target's end and the moment its parent can see it gone.
/// </remarks>
internal static unsafe partial class RuntimeLeftovers
{
    private const int PathCapacity = 4096;

    [LibraryImport("libc.so.6", EntryPoint = "open")]
    private static partial int Open(byte* path, int flags);

    [LibraryImport("libc.so.6", EntryPoint = "unlink")]
    private static partial int Unlink(byte* path);

    private static byte[]? s_ownPaths;

    /// <summary>Removes what the runtime of process <paramref name="pid"/> left; it must still exist (running or a zombie) so its pid is not reused.</summary>
    public static void Remove(int pid)
    {
        byte[]? paths = pid == Environment.ProcessId ? s_ownPaths ?? Paths(pid) : Paths(pid);
        if (paths is null)
        {
            return; // gone already, or an unexpected format: nothing safe to remove
        }

        fixed (byte* all = paths)
        {
            for (int at = 0; at < paths.Length; at += new ReadOnlySpan<byte>(all + at, paths.Length - at).IndexOf((byte)0) + 1)
            {
                _ = Unlink(all + at);
            }
        }
    }

    /// <summary>
    /// Works out this process's own names ahead of time (a spare child does it while it waits for work), so that
    /// <see cref="Remove"/> on the way out is three system calls.
    /// </summary>
    public static void PrepareOwn()
    {
        if (s_ownPaths is null && Paths(Environment.ProcessId) is { } paths)
        {
            s_ownPaths = paths;
            byte empty = 0;
            _ = Unlink(&empty); // binds the entry point now (an empty name only fails)
        }
    }

    /// <summary>The three names for <paramref name="pid"/>, each ending in a NUL byte; null if they cannot be worked out.</summary>
    private static byte[]? Paths(int pid)
    {
        Span<byte> startTime = stackalloc byte[24];
        int startLength = ReadStartTime(pid, startTime);
        string directory = Environment.GetEnvironmentVariable("TMPDIR") is { Length: > 0 } tmp ? tmp : "/tmp";
        if (startLength <= 0 || Encoding.UTF8.GetMaxByteCount(directory.Length) > PathCapacity - 128)
        {
            return null;
        }

        Span<byte> prefix = stackalloc byte[PathCapacity];
        int length = Encoding.UTF8.GetBytes(directory, prefix);
        if (length == 0 || prefix[length - 1] != (byte)'/')
        {
            prefix[length++] = (byte)'/';
        }

        ReadOnlySpan<byte> directoryBytes = prefix[..length];
        ReadOnlySpan<byte> stamp = startTime[..startLength];
        Span<byte> buffer = stackalloc byte[(3 * PathCapacity) + 3];
        int at = 0;
        AppendPath(buffer, ref at, directoryBytes, "dotnet-diagnostic-"u8, pid, stamp, "-socket"u8);
        AppendPath(buffer, ref at, directoryBytes, "clr-debug-pipe-"u8, pid, stamp, "-in"u8);
        AppendPath(buffer, ref at, directoryBytes, "clr-debug-pipe-"u8, pid, stamp, "-out"u8);
        return buffer[..at].ToArray();
    }

    private static void AppendPath(Span<byte> buffer, ref int at, ReadOnlySpan<byte> directory, ReadOnlySpan<byte> name, int pid, ReadOnlySpan<byte> startTime, ReadOnlySpan<byte> suffix)
    {
        Append(buffer, ref at, directory);
        Append(buffer, ref at, name);
        at += FormatDecimal(pid, buffer[at..]);
        buffer[at++] = (byte)'-';
        Append(buffer, ref at, startTime);
        Append(buffer, ref at, suffix);
        buffer[at++] = 0;
    }

    private static void Append(Span<byte> buffer, ref int at, ReadOnlySpan<byte> part)
    {
        part.CopyTo(buffer[at..]);
        at += part.Length;
    }

    /// <summary>Writes <paramref name="value"/> (not negative) in decimal; by hand, as culture-aware formatting can load ICU.</summary>
    public static int FormatDecimal(int value, Span<byte> destination)
    {
        Span<byte> digits = stackalloc byte[10];
        int count = 0;
        do
        {
            digits[count++] = (byte)('0' + (value % 10));
            value /= 10;
        }
        while (value > 0);

        for (int i = 0; i < count; i++)
        {
            destination[i] = digits[count - 1 - i];
        }

        return count;
    }

    /// <summary>
    /// Copies field 22 of /proc/pid/stat (start time in clock ticks, which the runtime uses to tell processes with the
    /// same pid apart) into <paramref name="destination"/>; returns its length, or 0 if it cannot be read.
    /// </summary>
    private static int ReadStartTime(int pid, Span<byte> destination)
    {
        byte* path = stackalloc byte[32];
        var pathSpan = new Span<byte>(path, 32);
        int at = 0;
        Append(pathSpan, ref at, "/proc/"u8);
        at += FormatDecimal(pid, pathSpan[at..]);
        Append(pathSpan, ref at, "/stat"u8);
        path[at] = 0;

        int fd = Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC);
        if (fd < 0)
        {
            return 0;
        }

        const int Capacity = 2048; // the name is at most 64 bytes; the whole line is far shorter than this
        byte* text = stackalloc byte[Capacity];
        int total = 0;
        while (total < Capacity)
        {
            nint n = LibC.read(fd, text + total, Capacity - total);
            if (n < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR)
            {
                continue;
            }

            if (n <= 0)
            {
                break;
            }

            total += (int)n;
        }

        _ = LibC.close(fd);
        var stat = new ReadOnlySpan<byte>(text, total);
        int afterName = stat.LastIndexOf((byte)')'); // the name may contain spaces and parentheses
        if (afterName < 0 || afterName + 2 > stat.Length)
        {
            return 0;
        }

        // After ") " come the fields from 3 (state) on: the start time is the 20th of them.
        ReadOnlySpan<byte> rest = stat[(afterName + 2)..];
        for (int field = 0; field < 19; field++)
        {
            int space = rest.IndexOf((byte)' ');
            if (space < 0)
            {
                return 0;
            }

            rest = rest[(space + 1)..];
        }

        int end = rest.IndexOfAny((byte)' ', (byte)'\n');
        ReadOnlySpan<byte> value = end < 0 ? rest : rest[..end];
        if (value.IsEmpty || value.Length > destination.Length)
        {
            return 0;
        }

        value.CopyTo(destination);
        return value.Length;
    }
}
