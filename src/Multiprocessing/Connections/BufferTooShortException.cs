namespace Multiprocessing;

/// <summary>Thrown by <see cref="Connection.RecvBytesInto(byte[], int)"/> when the message does not fit; the message is not lost.</summary>
public sealed class BufferTooShortException : Exception
{
    /// <summary>Creates the exception with a default message and no payload.</summary>
    public BufferTooShortException()
        : this("The buffer is too short for the message.")
    {
    }

    /// <summary>Creates the exception with a message and no payload.</summary>
    public BufferTooShortException(string message)
        : base(message) => Payload = [];

    /// <summary>Creates the exception with a message and an inner exception.</summary>
    public BufferTooShortException(string message, Exception innerException)
        : base(message, innerException) => Payload = [];

    /// <summary>Creates the exception carrying the whole message that did not fit.</summary>
    public BufferTooShortException(string message, byte[] payload)
        : base(message) => Payload = payload;

    /// <summary>The whole message that was received.</summary>
    public byte[] Payload { get; }
}
