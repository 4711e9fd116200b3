namespace Multiprocessing.Dummy;

#pragma warning disable SA1402, CA1005 // the four arities belong together

/// <summary>A thread-backed process whose target takes 1 explicit argument (Python's <c>args=</c>).</summary>
/// <typeparam name="T1">The type of argument 1.</typeparam>
public class Process<T1> : Process
{
    private readonly Action<T1> _typedTarget;
    private readonly T1 _arg1;

    /// <summary>Creates a process that will call <paramref name="target"/> with the given arguments on the new thread.</summary>
    /// <param name="target">The method to run on the new thread.</param>
    /// <param name="arg1">Argument 1, passed by reference.</param>
    /// <param name="name">The process name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon.</param>
    public Process(Action<T1> target, T1 arg1, string? name = null, bool daemon = false)
        : base(name, daemon)
    {
        _typedTarget = target ?? throw new ArgumentNullException(nameof(target));
        _arg1 = arg1;
    }

    /// <summary>Calls the target with the arguments.</summary>
    protected override void Run() => _typedTarget(_arg1);
}

/// <summary>A thread-backed process whose target takes 2 explicit arguments (Python's <c>args=</c>).</summary>
/// <typeparam name="T1">The type of argument 1.</typeparam>
/// <typeparam name="T2">The type of argument 2.</typeparam>
public class Process<T1,T2> : Process
{
    private readonly Action<T1,T2> _typedTarget;
    private readonly T1 _arg1;
    private readonly T2 _arg2;

    /// <summary>Creates a process that will call <paramref name="target"/> with the given arguments on the new thread.</summary>
    /// <param name="target">The method to run on the new thread.</param>
    /// <param name="arg1">Argument 1, passed by reference.</param>
    /// <param name="arg2">Argument 2, passed by reference.</param>
    /// <param name="name">The process name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon.</param>
    public Process(Action<T1,T2> target, T1 arg1, T2 arg2, string? name = null, bool daemon = false)
        : base(name, daemon)
    {
        _typedTarget = target ?? throw new ArgumentNullException(nameof(target));
        _arg1 = arg1;
        _arg2 = arg2;
    }

    /// <summary>Calls the target with the arguments.</summary>
    protected override void Run() => _typedTarget(_arg1, _arg2);
}

/// <summary>A thread-backed process whose target takes 3 explicit arguments (Python's <c>args=</c>).</summary>
/// <typeparam name="T1">The type of argument 1.</typeparam>
/// <typeparam name="T2">The type of argument 2.</typeparam>
/// <typeparam name="T3">The type of argument 3.</typeparam>
public class Process<T1,T2,T3> : Process
{
    private readonly Action<T1,T2,T3> _typedTarget;
    private readonly T1 _arg1;
    private readonly T2 _arg2;
    private readonly T3 _arg3;

    /// <summary>Creates a process that will call <paramref name="target"/> with the given arguments on the new thread.</summary>
    /// <param name="target">The method to run on the new thread.</param>
    /// <param name="arg1">Argument 1, passed by reference.</param>
    /// <param name="arg2">Argument 2, passed by reference.</param>
    /// <param name="arg3">Argument 3, passed by reference.</param>
    /// <param name="name">The process name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon.</param>
    public Process(Action<T1,T2,T3> target, T1 arg1, T2 arg2, T3 arg3, string? name = null, bool daemon = false)
        : base(name, daemon)
    {
        _typedTarget = target ?? throw new ArgumentNullException(nameof(target));
        _arg1 = arg1;
        _arg2 = arg2;
        _arg3 = arg3;
    }

    /// <summary>Calls the target with the arguments.</summary>
    protected override void Run() => _typedTarget(_arg1, _arg2, _arg3);
}

/// <summary>A thread-backed process whose target takes 4 explicit arguments (Python's <c>args=</c>).</summary>
/// <typeparam name="T1">The type of argument 1.</typeparam>
/// <typeparam name="T2">The type of argument 2.</typeparam>
/// <typeparam name="T3">The type of argument 3.</typeparam>
/// <typeparam name="T4">The type of argument 4.</typeparam>
public class Process<T1,T2,T3,T4> : Process
{
    private readonly Action<T1,T2,T3,T4> _typedTarget;
    private readonly T1 _arg1;
    private readonly T2 _arg2;
    private readonly T3 _arg3;
    private readonly T4 _arg4;

    /// <summary>Creates a process that will call <paramref name="target"/> with the given arguments on the new thread.</summary>
    /// <param name="target">The method to run on the new thread.</param>
    /// <param name="arg1">Argument 1, passed by reference.</param>
    /// <param name="arg2">Argument 2, passed by reference.</param>
    /// <param name="arg3">Argument 3, passed by reference.</param>
    /// <param name="arg4">Argument 4, passed by reference.</param>
    /// <param name="name">The process name; <c>Thread-N</c> when null.</param>
    /// <param name="daemon">Whether the process is a daemon.</param>
    public Process(Action<T1,T2,T3,T4> target, T1 arg1, T2 arg2, T3 arg3, T4 arg4, string? name = null, bool daemon = false)
        : base(name, daemon)
    {
        _typedTarget = target ?? throw new ArgumentNullException(nameof(target));
        _arg1 = arg1;
        _arg2 = arg2;
        _arg3 = arg3;
        _arg4 = arg4;
    }

    /// <summary>Calls the target with the arguments.</summary>
    protected override void Run() => _typedTarget(_arg1, _arg2, _arg3, _arg4);
}
