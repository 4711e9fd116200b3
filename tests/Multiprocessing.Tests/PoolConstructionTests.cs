using System.Runtime.Serialization;
using Multiprocessing.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>
/// A pool whose constructor fails leaves nothing running. Alone in a collection that runs by itself, so the pool
/// workers that appear while it runs are its own.
/// </summary>
[Collection(nameof(PoolConstructionTests))]
public sealed class PoolConstructionTests
{
    /// <summary>Crosses to one child, then refuses: the second worker of a pool fails to start.</summary>
    [ObjectConverter(typeof(CrossesOnceConverter))]
    internal sealed class CrossesOnce
    {
        public int Crossings;

        /// <summary>The pool workers alive when the second crossing was refused.</summary>
        public List<mp.Process> WorkersAtRefusal { get; } = [];
    }

    internal sealed class CrossesOnceConverter : ObjectConverter<CrossesOnce>
    {
        public override void Write(ObjectWriter writer, CrossesOnce value)
        {
            if (++value.Crossings > 1)
            {
                value.WorkersAtRefusal.AddRange(mp.Process.ActiveChildren().Where(p => p.Name.StartsWith("PoolWorker-", StringComparison.Ordinal)));
                throw new SerializationException("refused on purpose: the second worker must fail to start");
            }

            writer.WriteInt32(value.Crossings);
        }

        public override CrossesOnce Read(ref ObjectReader reader) => new() { Crossings = reader.ReadInt32() };
    }

    [Fact]
    public void A_constructor_that_fails_after_starting_workers_leaves_none_running()
    {
        var once = new CrossesOnce();
        var error = Assert.Throws<SerializationException>(() => new mp.Pool(3, initializer: () => GC.KeepAlive(once)));
        Assert.Contains("on purpose", error.Message, StringComparison.Ordinal);

        mp.Process started = Assert.Single(once.WorkersAtRefusal); // the first worker was up when the second failed
        int pid = started.Pid!.Value;
        Assert.True(Bounded.ProcessEnds(pid, TimeSpan.Zero), $"the first worker (pid {pid}) still runs after the constructor threw");
        Assert.DoesNotContain(mp.Process.ActiveChildren(), p => p.Pid == pid);
    }
}

[CollectionDefinition(nameof(PoolConstructionTests), DisableParallelization = true)]
public sealed class PoolConstructionCollection
{
}
