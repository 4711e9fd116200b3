namespace Multiprocessing;

/// <summary>
/// One end of a two-way message channel (Python's <c>Connection</c>): <see cref="Connection"/> between processes, and the
/// thread-backed twin in <c>Multiprocessing.Dummy</c>. Messages keep their boundaries; objects go whole.
/// </summary>
public interface IConnection : IDisposable
{
    /// <summary>True once closed.</summary>
    bool Closed { get; }

    /// <summary>Whether this end can receive.</summary>
    bool Readable { get; }

    /// <summary>Whether this end can send.</summary>
    bool Writable { get; }

    /// <summary>Sends <paramref name="value"/> as one message.</summary>
    void Send<T>(T value);

    /// <summary>Receives one message as <typeparamref name="T"/>; <see cref="EndOfStreamException"/> once the other end closed and nothing is left.</summary>
    T Recv<T>();

    /// <summary>Receives one message as whatever it holds.</summary>
    object? Recv();

    /// <summary>Sends raw bytes as one message.</summary>
    void SendBytes(ReadOnlySpan<byte> data);

    /// <summary>Sends <paramref name="size"/> bytes of <paramref name="buffer"/> from <paramref name="offset"/> as one message.</summary>
    void SendBytes(byte[] buffer, int offset, int size);

    /// <summary>Receives one message of raw bytes; longer than <paramref name="maxLength"/> → <see cref="IOException"/>.</summary>
    byte[] RecvBytes(int? maxLength = null);

    /// <summary>Receives one message into <paramref name="buffer"/> at <paramref name="offset"/>; returns its length.</summary>
    int RecvBytesInto(byte[] buffer, int offset = 0);

    /// <summary>Whether a message (or the end of the stream) is waiting, waiting up to <paramref name="timeout"/>.</summary>
    bool Poll(TimeSpan timeout = default);

    /// <summary>Sends <paramref name="value"/> without blocking a thread.</summary>
    ValueTask SendAsync<T>(T value, CancellationToken cancellationToken = default);

    /// <summary>Receives one message without blocking a thread.</summary>
    ValueTask<T> RecvAsync<T>(CancellationToken cancellationToken = default);

    /// <summary>Closes this end.</summary>
    void Close();
}
