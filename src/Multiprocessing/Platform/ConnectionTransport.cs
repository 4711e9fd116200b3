using System.IO.Pipes;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>
/// The byte stream under a <see cref="Connection"/>: a socket (pipes, Unix sockets, TCP) or a named pipe. The
/// connection does its own framing and buffering on top; this only moves bytes.
/// </summary>
internal abstract class ConnectionTransport : IDisposable
{
    /// <summary>The OS handle: what <c>Connection.Wait</c> and <c>Poll</c> watch, and what crosses to a child.</summary>
    public abstract SafeHandle Handle { get; }

    /// <summary>The socket, when the transport is one (descriptor passing and socket options need it); else null.</summary>
    public virtual Socket? Socket => null;

    /// <summary>Reads at most <paramref name="buffer"/>.Length bytes; 0 at end of stream.</summary>
    public abstract int Receive(Span<byte> buffer);

    /// <summary>As <see cref="Receive"/>, without blocking a thread.</summary>
    public abstract ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken);

    /// <summary>Writes some of <paramref name="data"/>; returns how many bytes went.</summary>
    public abstract int Send(ReadOnlySpan<byte> data);

    /// <summary>As <see cref="Send"/>, without blocking a thread.</summary>
    public abstract ValueTask<int> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    /// <summary>Stops one direction where the transport can (sockets); a no-op elsewhere.</summary>
    public abstract void Shutdown(SocketShutdown how);

    /// <summary>Closes the transport.</summary>
    public abstract void Dispose();
}

/// <summary>A connection over a socket.</summary>
internal sealed class SocketTransport(Socket socket) : ConnectionTransport
{
    public override SafeHandle Handle => socket.SafeHandle;

    public override Socket Socket => socket;

    public override int Receive(Span<byte> buffer) => socket.Receive(buffer, SocketFlags.None);

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        => socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    public override int Send(ReadOnlySpan<byte> data) => socket.Send(data, SocketFlags.None);

    public override ValueTask<int> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
        => socket.SendAsync(data, SocketFlags.None, cancellationToken);

    public override void Shutdown(SocketShutdown how) => socket.Shutdown(how);

    public override void Dispose() => socket.Dispose();
}

/// <summary>
/// A connection over a named pipe (Python's <c>AF_PIPE</c> family): a Windows named pipe on Windows; on Linux, .NET
/// carries <see cref="System.IO.Pipes"/> named pipes over a Unix socket, which is how this path is tested here.
/// </summary>
internal sealed class NamedPipeTransport(PipeStream pipe) : ConnectionTransport
{
    public override SafeHandle Handle => pipe.SafePipeHandle;

    public override int Receive(Span<byte> buffer) => pipe.Read(buffer);

    public override ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
        => pipe.ReadAsync(buffer, cancellationToken);

    public override int Send(ReadOnlySpan<byte> data)
    {
        pipe.Write(data);
        return data.Length;
    }

    public override async ValueTask<int> SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken)
    {
        await pipe.WriteAsync(data, cancellationToken).ConfigureAwait(false);
        return data.Length;
    }

    public override void Shutdown(SocketShutdown how)
    {
        // A pipe has no half-close; connections over pipes are always two-way.
    }

    public override void Dispose() => pipe.Dispose();
}
