namespace Multiprocessing.Dummy;

/// <summary>
/// The result of work submitted to a thread <see cref="Pool"/> (Python's <c>AsyncResult</c>): the process pool's
/// <see cref="Multiprocessing.AsyncResult{T}"/>, under this namespace's name so code switches with one <c>using</c>.
/// </summary>
/// <typeparam name="T">The result's type.</typeparam>
public sealed class AsyncResult<T> : Multiprocessing.AsyncResult<T>
{
    internal AsyncResult(Action<T>? callback = null, Action<Exception>? errorCallback = null)
        : base(callback, errorCallback)
    {
    }
}
