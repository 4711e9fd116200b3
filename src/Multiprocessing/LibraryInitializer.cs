using System.Runtime.CompilerServices;

namespace Multiprocessing;

/// <summary>Wires the layers together when the assembly loads, in parents and children alike.</summary>
internal static class LibraryInitializer
{
#pragma warning disable CA2255 // the library needs its converters registered before any deserialization, also in children
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize()
    {
        Serialization.Converters.AddProvider(Spawning.ProcessConverter<Process>.Provide);
        Serialization.Converters.AddProvider(static type => type == typeof(Spawning.StartRequest) ? new Spawning.StartRequestConverter() : null);
        Serialization.Converters.AddProvider(static type => type == typeof(Connection) ? new Connections.ConnectionConverter() : null);
        Serialization.Converters.AddProvider(Managers.ManagerProxyConverter.Provide);
        Serialization.Converters.AddProvider(static type => type == typeof(Managers.ChannelOffer) ? new Managers.ChannelOfferConverter() : null);
        Serialization.Converters.AddProvider(static type => type == typeof(Managers.ManagerRequest) ? Managers.ManagerRequestConverter.Instance : null);
        Serialization.Converters.AddProvider(static type => type == typeof(Managers.ManagerResponse) ? Managers.ManagerResponseConverter.Instance : null);
        Serialization.Converters.AddProvider(Synchronization.SynchronizationConverters.Provide);
        Serialization.Converters.AddProvider(Sharing.SharedMemoryConverters.Provide);
        Serialization.Converters.AddProvider(Queues.QueueConverter<object, object>.Provide);

        // Before the app can change directory: children re-run this command line, whose paths may be relative.
        // A child has its parent's (already absolute) command line and needs nothing.
        if (Environment.GetEnvironmentVariable(Spawning.ChildLauncher.ChildVariable) is null)
        {
            Spawning.ChildLauncher.CaptureCommandLine();
        }
    }
}
