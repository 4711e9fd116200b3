#pragma warning disable CA1050 // The runtime looks the hook up by this exact global name.

/// <summary>Entry point the runtime calls before <c>Main</c> when this assembly is listed in <c>DOTNET_STARTUP_HOOKS</c>.</summary>
internal static class StartupHook
{
    /// <summary>In a child started by Multiprocessing: runs its target and exits; otherwise returns at once.</summary>
    public static void Initialize() => Multiprocessing.Spawning.ChildBootstrap.RunIfChild(calledFromMain: false);
}
