using System.Runtime.Serialization;

namespace Multiprocessing.Pooling;

/// <summary>One unit of work shipped to a pool worker: a call, or a chunk of a map.</summary>
internal abstract class WorkItem
{
    /// <summary>Runs in the worker and returns what goes back (a value, or an array for a chunk).</summary>
    public abstract object? Run();
}

/// <summary>A single call: <c>Apply</c>, <c>ApplyAsync</c>.</summary>
internal sealed class CallItem<TResult>(Func<TResult> function) : WorkItem
{
    private readonly Func<TResult> _function = function;

    public override object? Run() => _function();
}

/// <summary>A call with nothing to return.</summary>
internal sealed class ActionItem(Action action) : WorkItem
{
    private readonly Action _action = action;

    public override object? Run()
    {
        _action();
        return null;
    }
}

/// <summary>A chunk of a map: the function applied to each item in order; the first exception fails the chunk (Python's mapstar).</summary>
internal sealed class MapChunk<T, TResult>(Func<T, TResult> function, T[] items) : WorkItem
{
    private readonly Func<T, TResult> _function = function;
    private readonly T[] _items = items;

    public int Count => _items.Length;

    public override object? Run()
    {
        var results = new TResult[_items.Length];
        for (int i = 0; i < _items.Length; i++)
        {
            results[i] = _function(_items[i]);
        }

        return results;
    }
}

/// <summary>What a worker sends back for each item it received, in the order received.</summary>
internal sealed class WorkResult(WorkResultKind kind, object? value, RemoteException? error)
{
    public WorkResultKind Kind { get; } = kind;

    public object? Value { get; } = value;

    public RemoteException? Error { get; } = error;
}

internal enum WorkResultKind : byte
{
    /// <summary>The item ran and returned <see cref="WorkResult.Value"/>.</summary>
    Success,

    /// <summary>The item threw, or could not be read, or its result could not be sent: <see cref="WorkResult.Error"/>.</summary>
    Failure,

    /// <summary>The pool's initializer threw in this worker, which then ends: <see cref="WorkResult.Error"/>.</summary>
    InitializerFailed,
}

/// <summary>The loop a pool worker process runs: receive an item, run it, send its result, until the pool hangs up.</summary>
internal static class PoolWorker
{
    public static void Serve(Connection connection, Action? initializer)
    {
        using (connection)
        {
            try
            {
                initializer?.Invoke();
            }
            catch (Exception ex)
            {
                connection.Send(new WorkResult(WorkResultKind.InitializerFailed, null, RemoteException.FromException(ex)));
                return;
            }

            while (true)
            {
                WorkItem? item;
                try
                {
                    item = connection.Recv<WorkItem?>();
                }
                catch (EndOfStreamException)
                {
                    return; // the pool closed this worker's connection: done
                }
                catch (SerializationException ex)
                {
                    // The whole message was read, so the stream is still in step: this item fails, the next one may not.
                    connection.Send(new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex)));
                    continue;
                }

                if (item is null)
                {
                    return;
                }

                WorkResult result;
                try
                {
                    result = new WorkResult(WorkResultKind.Success, item.Run(), null);
                }
                catch (Exception ex)
                {
                    result = new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(ex));
                }

                try
                {
                    connection.Send(result);
                }
                catch (SerializationException ex)
                {
                    connection.Send(new WorkResult(WorkResultKind.Failure, null, RemoteException.FromException(
                        new SerializationException($"The task's result could not be sent back: {ex.Message}", ex))));
                }
            }
        }
    }
}
