using System.IO.Pipes;

namespace Multiprocessing.Platform;

/// <summary>
/// Listening on and connecting to named pipes, as CPython's <c>PipeListener</c>/<c>PipeClient</c> do on Windows: the
/// listener always keeps one instance of the pipe waiting for the next client, so a client can connect while the
/// last one is being served. Only the current user may connect (<see cref="PipeOptions.CurrentUserOnly"/>).
/// </summary>
internal sealed class NamedPipeAcceptor : IDisposable
{
    /// <summary>How long a client waits for a busy pipe (every instance taken) or a missing one before giving up.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(1);

    private const PipeOptions Options = PipeOptions.Asynchronous | PipeOptions.CurrentUserOnly;

    private readonly string _name;
    private readonly SemaphoreSlim _acceptGate = new(1, 1);
    private NamedPipeServerStream? _waiting;

    /// <summary>Creates the pipe; <see cref="IOException"/> naming it when another listener has it.</summary>
    public NamedPipeAcceptor(NamedPipeEndPoint address)
    {
        if (!address.IsLocal)
        {
            throw new ArgumentException($"Cannot listen on {address}: pipes can only be created on this machine (\\\\.\\pipe\\…).", nameof(address));
        }

        _name = address.PipeName;
        try
        {
            _waiting = NewInstance(PipeOptions.FirstPipeInstance);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"Cannot listen on {address}: the address is already in use ({ex.Message}).", ex);
        }
    }

    /// <summary>Waits for a client; returns its connected pipe.</summary>
    public NamedPipeServerStream Accept()
    {
        _acceptGate.Wait();
        try
        {
            NamedPipeServerStream pipe = Waiting;
            pipe.WaitForConnection();
            return Handover(pipe);
        }
        finally
        {
            _acceptGate.Release();
        }
    }

    /// <summary>As <see cref="Accept"/>, without blocking a thread; cancelling leaves the listener usable.</summary>
    public async Task<NamedPipeServerStream> AcceptAsync(CancellationToken cancellationToken)
    {
        await _acceptGate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            NamedPipeServerStream pipe = Waiting;
            try
            {
                await pipe.WaitForConnectionAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                // A cancelled wait may leave the instance unusable: put a fresh one in its place.
                _waiting = NewInstance(PipeOptions.None);
                await pipe.DisposeAsync().ConfigureAwait(false);
                throw;
            }

            return Handover(pipe);
        }
        finally
        {
            _acceptGate.Release();
        }
    }

    /// <summary>Connects to the pipe at <paramref name="address"/>.</summary>
    public static NamedPipeClientStream Connect(NamedPipeEndPoint address)
    {
        var pipe = new NamedPipeClientStream(address.ServerName, address.PipeName, PipeDirection.InOut, Options);
        try
        {
            pipe.Connect(ConnectTimeout);
            return pipe;
        }
        catch
        {
            pipe.Dispose();
            throw;
        }
    }

    /// <summary>As <see cref="Connect"/>, without blocking a thread.</summary>
    public static async Task<NamedPipeClientStream> ConnectAsync(NamedPipeEndPoint address, CancellationToken cancellationToken)
    {
        var pipe = new NamedPipeClientStream(address.ServerName, address.PipeName, PipeDirection.InOut, Options);
        try
        {
            await pipe.ConnectAsync(ConnectTimeout, cancellationToken).ConfigureAwait(false);
            return pipe;
        }
        catch
        {
            await pipe.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Stops listening: the waiting instance goes, and with the last instance the pipe's name.</summary>
    public void Dispose()
    {
        Interlocked.Exchange(ref _waiting, null)?.Dispose();
    }

    private NamedPipeServerStream Waiting => _waiting ?? throw new ObjectDisposedException(nameof(Listener));

    private NamedPipeServerStream Handover(NamedPipeServerStream connected)
    {
        // The next client needs an instance to connect to before this one is handed out (CPython does the same).
        NamedPipeServerStream next = NewInstance(PipeOptions.None);
        if (Interlocked.CompareExchange(ref _waiting, next, connected) != connected)
        {
            next.Dispose(); // the listener was closed meanwhile
        }

        return connected;
    }

    private NamedPipeServerStream NewInstance(PipeOptions extra)
        => new(_name, PipeDirection.InOut, NamedPipeServerStream.MaxAllowedServerInstances, PipeTransmissionMode.Byte, Options | extra);
}
