using Multiprocessing.Platform;
using Multiprocessing.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>The platform pieces under every shared-memory primitive: regions that cross to children, futexes, process watch.</summary>
public sealed unsafe class SharedRegionTests
{
    [ObjectConverter(typeof(RegionBoxConverter))]
    internal sealed class RegionBox(SharedRegion region)
    {
        public SharedRegion Region { get; } = region;
    }

    internal sealed class RegionBoxConverter : ObjectConverter<RegionBox>
    {
        public override void Write(ObjectWriter writer, RegionBox value) => writer.WriteRegion(value.Region, typeof(RegionBox));

        public override RegionBox Read(ref ObjectReader reader) => new(reader.ReadRegion());
    }

    [Fact]
    public void A_child_writes_an_anonymous_region_and_wakes_the_parent_through_a_futex()
    {
        using SharedRegion region = SharedMemoryBackend.Current.CreateAnonymous(4096, "test");
        var box = new RegionBox(region);
        int* word = (int*)region.Pointer;
        Assert.Equal(0, *word);

        using var child = new mp.Process(() =>
        {
            int* remote = (int*)box.Region.Pointer;
            Volatile.Write(ref *remote, 7);
            Futex.Wake(remote);
        });
        child.Start();

        Deadline deadline = Deadline.After(Bounded.Long);
        while (Volatile.Read(ref *word) == 0)
        {
            Assert.True(Futex.Wait(word, 0, deadline), "the child's write and wake did not arrive");
        }

        Assert.Equal(7, *word);
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
    }

    [Fact]
    public void A_futex_wait_gives_up_at_its_deadline()
    {
        using SharedRegion region = SharedMemoryBackend.Current.CreateAnonymous(8, "test");

        // A wait may also end early (a signal: true means "look again"), but it ends false once the deadline is reached.
        Deadline deadline = Deadline.After(TimeSpan.FromMilliseconds(20));
        int early = 0;
        while (Futex.Wait((int*)region.Pointer, 0, deadline))
        {
            Assert.True(++early < 100, "the wait kept ending early with the word unchanged");
        }

        Assert.True(deadline.HasPassed);
        Assert.False(Futex.Wait((int*)region.Pointer, 0, Deadline.After(TimeSpan.Zero)));
        Assert.True(Futex.Wait((int*)region.Pointer, 1, Deadline.After(TimeSpan.FromSeconds(5))), "a changed word returns at once");
    }

    [Fact]
    public void Named_regions_attach_by_name_refuse_duplicates_and_unlink()
    {
        string name = "mp-test-" + Guid.NewGuid().ToString("N");
        using SharedRegion created = SharedMemoryBackend.Current.CreateNamed(name, 100);
        try
        {
            created.Span[5] = 42;
            using (SharedRegion attached = SharedMemoryBackend.Current.OpenNamed("/" + name))
            {
                Assert.Equal(100, attached.Length);
                Assert.Equal(42, attached.Span[5]);
            }

            Assert.Throws<IOException>(() => SharedMemoryBackend.Current.CreateNamed(name, 100));
        }
        finally
        {
            Assert.True(SharedMemoryBackend.Current.Unlink(name));
        }

        Assert.Throws<FileNotFoundException>(() => SharedMemoryBackend.Current.OpenNamed(name));
        Assert.False(File.Exists("/dev/shm/" + name));
        Assert.Throws<ArgumentException>(() => SharedMemoryBackend.Current.OpenNamed("a/b"));
    }

    [Fact]
    public void The_process_watch_reports_a_killed_process_and_an_ended_one_at_once()
    {
        using var child = new mp.Process(() => Thread.Sleep(Timeout.Infinite));
        child.Start();
        using var ended = new ManualResetEventSlim();
        using IDisposable? watch = ProcessWatch.WhenExited(child.Pid!.Value, ended.Set);
        Assert.NotNull(watch);
        Assert.True(ProcessWatch.IsAlive(child.Pid!.Value));
        child.Kill();
        Assert.True(ended.Wait(Bounded.Long), "the watch did not report the killed child");
        Bounded.Join(child);
        Assert.False(ProcessWatch.IsAlive(child.Pid!.Value));

        bool called = false;
        Assert.Null(ProcessWatch.WhenExited(child.Pid!.Value, () => called = true));
        Assert.True(called);
    }
}
