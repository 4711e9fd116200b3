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
    }
}
