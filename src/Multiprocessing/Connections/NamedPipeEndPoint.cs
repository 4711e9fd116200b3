using System.Net;

namespace Multiprocessing;

/// <summary>
/// The address of a named pipe (Python's <c>AF_PIPE</c> family, <c>r'\\.\pipe\name'</c>), for <see cref="Listener"/>
/// and <see cref="Client"/>. On Windows it is a Windows named pipe; elsewhere .NET carries named pipes over a Unix
/// socket whose file only the current user may open.
/// </summary>
public sealed class NamedPipeEndPoint : EndPoint
{
    private const string Prefix = @"\\";
    private const string PipeSegment = @"\pipe\";

    /// <summary>A pipe on the local machine.</summary>
    /// <param name="name">The pipe's name (<c>jobs</c>), or its full path (<c>\\.\pipe\jobs</c>, <c>\\server\pipe\jobs</c>).</param>
    /// <exception cref="ArgumentException">The name is empty, contains a null character, or is a malformed full path.</exception>
    public NamedPipeEndPoint(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.StartsWith(Prefix, StringComparison.Ordinal))
        {
            int pipe = name.IndexOf(PipeSegment, Prefix.Length, StringComparison.OrdinalIgnoreCase);
            if (pipe <= Prefix.Length)
            {
                throw new ArgumentException($@"'{name}' is not a pipe path: write \\.\pipe\name or \\server\pipe\name, or just the name.", nameof(name));
            }

            ServerName = name[Prefix.Length..pipe];
            name = name[(pipe + PipeSegment.Length)..];
        }
        else
        {
            ServerName = ".";
        }

        if (name.Length == 0 || name.Contains('\0'))
        {
            throw new ArgumentException("A pipe name must be non-empty and free of null characters.", nameof(name));
        }

        PipeName = name;
    }

    /// <summary>The pipe's name, without the <c>\\server\pipe\</c> part.</summary>
    public string PipeName { get; }

    /// <summary>The machine the pipe is on: <c>.</c> for this one (the only one a <see cref="Listener"/> can create pipes on).</summary>
    public string ServerName { get; }

    /// <summary>Whether the pipe is on this machine.</summary>
    public bool IsLocal => ServerName == ".";

    /// <summary>The full path, as Python writes it: <c>\\.\pipe\name</c>.</summary>
    public override string ToString() => Prefix + ServerName + PipeSegment + PipeName;

    /// <summary>Same server and pipe name (Windows compares pipe names without regard to case; so does this).</summary>
    public override bool Equals(object? obj)
        => obj is NamedPipeEndPoint other
            && string.Equals(other.PipeName, PipeName, StringComparison.OrdinalIgnoreCase)
            && string.Equals(other.ServerName, ServerName, StringComparison.OrdinalIgnoreCase);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(StringComparer.OrdinalIgnoreCase.GetHashCode(PipeName), StringComparer.OrdinalIgnoreCase.GetHashCode(ServerName));
}
