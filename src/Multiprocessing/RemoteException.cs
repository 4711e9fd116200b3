using System.Text;

namespace Multiprocessing;

/// <summary>An exception raised in another process, kept as data: its type name, message and stack trace.</summary>
public sealed class RemoteException : Exception
{
    /// <summary>Creates an empty remote exception.</summary>
    public RemoteException()
        : this("System.Exception", "An exception was raised in another process.", "", null)
    {
    }

    /// <summary>Creates a remote exception with a message and no remote details.</summary>
    public RemoteException(string message)
        : this("System.Exception", message, "", null)
    {
    }

    /// <summary>Creates a remote exception with a message and a local inner exception.</summary>
    public RemoteException(string message, Exception innerException)
        : base(message, innerException)
    {
        RemoteType = "System.Exception";
        RemoteStackTrace = "";
    }

    /// <summary>Creates a remote exception from its parts.</summary>
    public RemoteException(string remoteType, string message, string remoteStackTrace, RemoteException? innerException)
        : base(message, innerException)
    {
        RemoteType = remoteType;
        RemoteStackTrace = remoteStackTrace;
    }

    /// <summary>The full name of the exception's type in the process that raised it.</summary>
    public string RemoteType { get; }

    /// <summary>The stack trace in the process that raised it.</summary>
    public string RemoteStackTrace { get; }

    /// <summary>Captures <paramref name="exception"/> and its inner exceptions as data that any process can read.</summary>
    public static RemoteException FromException(Exception exception)
    {
        ArgumentNullException.ThrowIfNull(exception);
        if (exception is RemoteException remote)
        {
            return remote;
        }

        Exception? innerSource = exception is AggregateException { InnerExceptions.Count: > 0 } aggregate ? aggregate.InnerExceptions[0] : exception.InnerException;
        RemoteException? inner = innerSource is null ? null : FromException(innerSource);
        return new RemoteException(exception.GetType().FullName ?? exception.GetType().Name, exception.Message, exception.StackTrace ?? "", inner);
    }

    /// <summary>Shows the remote type, message and stack trace, then the inner exceptions.</summary>
    public override string ToString()
    {
        var text = new StringBuilder();
        text.Append(RemoteType).Append(": ").Append(Message);
        if (!string.IsNullOrEmpty(RemoteStackTrace))
        {
            text.AppendLine().Append(RemoteStackTrace);
        }

        if (InnerException is { } inner)
        {
            text.AppendLine().Append(" ---> ").Append(inner.ToString()).AppendLine().Append("   --- End of inner exception stack trace ---");
        }

        if (StackTrace is { } local)
        {
            text.AppendLine().Append("   --- Raised in another process; rethrown here ---").AppendLine().Append(local);
        }

        return text.ToString();
    }
}

/// <summary>A process-level failure, such as a worker that died.</summary>
public sealed class ProcessException : Exception
{
    /// <summary>Creates an exception with a default message.</summary>
    public ProcessException()
        : this("A process failed.")
    {
    }

    /// <summary>Creates an exception with a message.</summary>
    public ProcessException(string message)
        : base(message)
    {
    }

    /// <summary>Creates an exception with a message and an inner exception.</summary>
    public ProcessException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>Creates an exception for a process that ended with <paramref name="exitCode"/>.</summary>
    public ProcessException(string message, int? exitCode)
        : base(message) => ExitCode = exitCode;

    /// <summary>The process's exit code (−N: killed by signal N), if it is known.</summary>
    public int? ExitCode { get; }
}
