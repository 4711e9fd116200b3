using System.Text;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>ShareableList in CPython's layout, and named blocks shared with Python processes in both directions.</summary>
public sealed class ShareableListTests
{
    public static TheoryData<string> Pythons() => [.. PythonPeer.Interpreters()];

    [Fact]
    public void Slots_hold_every_supported_type_and_keep_their_capacity()
    {
        using var list = new mp.ShareableList([42, 2.5, true, "héllo", new byte[] { 1, 2, 3 }, null, -7L, 1.5f]);
        try
        {
            Assert.Equal(8, list.Count);
            Assert.Equal([42L, 2.5, true, "héllo", new byte[] { 1, 2, 3 }, null, -7L, 1.5], list.ToArray());
            Assert.Equal("qdxxxxxxx?8s8sxxxxxx?xqd", list.Format);
            Assert.Equal(8, list.Capacity(3)); // "héllo" is 6 bytes in UTF-8: rounded up past its end to 8
            Assert.Equal(8, list.Capacity(0));

            list[3] = "12345678"; // exactly the capacity
            Assert.Equal("12345678", list[3]);
            Assert.Throws<ArgumentException>(() => list[3] = "123456789");
            Assert.Throws<ArgumentException>(() => list[4] = new byte[9]);
            Assert.Throws<ArgumentException>(() => list[0] = "str in a number slot");
            Assert.Equal(42L, list[0]);
        }
        finally
        {
            list.Unlink();
        }
    }

    [Fact]
    public void Any_slot_can_change_type_within_its_capacity_and_errors_are_specific()
    {
        using var list = new mp.ShareableList(["a long enough string", 1L, null]);
        try
        {
            Assert.Equal(24, list.Capacity(0));
            list[0] = 3.25;
            Assert.Equal(3.25, list[0]);
            list[0] = "short";
            Assert.Equal("short", list[0]);
            list[1] = "8 bytes!";
            Assert.Equal("8 bytes!", list[1]);
            list[1] = false;
            Assert.Equal(false, list[1]);
            list[2] = new byte[] { 9 };
            Assert.Equal(new byte[] { 9 }, list[2]);
            list[2] = null;
            Assert.Null(list[2]);
            list[1] = (byte)200;
            Assert.Equal(200L, list[1]);

            Assert.Throws<IndexOutOfRangeException>(() => list[3]);
            Assert.Throws<IndexOutOfRangeException>(() => list[-1] = 1L);
            Assert.Equal("short", list[^3]);
            Assert.Throws<ArgumentException>(() => list[0] = DateTime.Now);
            Assert.Throws<ArgumentException>(() => list[0] = ulong.MaxValue);
            Assert.Throws<ArgumentException>(() => new mp.ShareableList([new object()]));
            Assert.Equal(1, list.CountOf(200));
            Assert.Equal(1, list.IndexOf(200L));
            Assert.Equal(-1, list.IndexOf("absent"));
            Assert.Equal($"ShareableList(['short', 200, None], name='{list.Name}')", list.ToString());
        }
        finally
        {
            list.Unlink();
        }
    }

    [Fact]
    public void Attaching_by_name_and_crossing_to_a_child_see_the_same_slots()
    {
        using var list = new mp.ShareableList([1L, "two", 3.0], name: "mp-test-" + Guid.NewGuid().ToString("N")[..12]);
        try
        {
            using (var attached = mp.ShareableList.Attach(list.Name))
            {
                Assert.Equal(list.ToArray(), attached.ToArray());
                attached[0] = 10L;
            }

            Assert.Equal(10L, list[0]);
            var child = new mp.Process(() =>
            {
                list[1] = "zwei";
                using var byName = mp.ShareableList.Attach(list.Name);
                byName[2] = 30.5;
            });
            Bounded.Run(child);
            Assert.Equal(0, child.ExitCode);
            Assert.Equal([10L, "zwei", 30.5], list.ToArray());
            Assert.Throws<FileNotFoundException>(() => mp.ShareableList.Attach("mp-test-missing-" + Guid.NewGuid().ToString("N")));

            using var notAList = new mp.SharedMemory(create: true, size: 8);
            notAList.Span.Fill(0xff);
            Assert.Throws<InvalidDataException>(() => mp.ShareableList.Attach(notAList.Name));
            notAList.Unlink();

            using var empty = new mp.ShareableList([]);
            Assert.Empty(mp.ShareableList.Attach(empty.Name));
            empty.Unlink();
        }
        finally
        {
            list.Unlink();
        }
    }

    [Theory]
    [MemberData(nameof(Pythons))]
    public void Python_attaches_to_our_block_and_list_and_its_writes_come_back(string python)
    {
        using var block = new mp.SharedMemory(create: true, size: 32);
        using var list = new mp.ShareableList([42L, 2.5, true, "héllo wörld", new byte[] { 114, 97, 119 }, null, -7L]);
        try
        {
            Encoding.ASCII.GetBytes("hello").CopyTo(block.Span);
            const string script = """
                import sys
                from multiprocessing import shared_memory, resource_tracker
                b = shared_memory.SharedMemory(sys.argv[1])
                sl = shared_memory.ShareableList(name=sys.argv[2])
                print(bytes(b.buf[:5]).decode(), b.size)
                print(list(sl))
                print(sl.format)
                b.buf[5] = 99
                sl[0] = 100
                sl[3] = "xyz"
                sl[5] = 1.25
                # Attaching registered them with this interpreter's resource tracker, which would remove them at exit.
                resource_tracker.unregister(b._name, "shared_memory")
                resource_tracker.unregister(sl.shm._name, "shared_memory")
                b.close()
                sl.shm.close()
                """;
            (int exit, string output, string error) = Bounded.Command(python, "-c", script, block.Name, list.Name);
            Assert.True(exit == 0, error);
            string[] lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(["hello 32", "[42, 2.5, True, 'héllo wörld', b'raw', None, -7]", "qdxxxxxxx?16s8sxxxxxx?xq"], lines);
            Assert.Equal(99, block.Span[5]);
            Assert.Equal([100L, 2.5, true, "xyz", new byte[] { 114, 97, 119 }, 1.25, -7L], list.ToArray());
            Assert.True(File.Exists("/dev/shm/" + block.Name));
        }
        finally
        {
            block.Unlink();
            list.Unlink();
        }
    }

    [Theory]
    [MemberData(nameof(Pythons))]
    public void We_attach_to_a_block_and_a_list_Python_created(string python)
    {
        string blockName = "mp-test-" + Guid.NewGuid().ToString("N")[..12];
        string listName = "mp-test-" + Guid.NewGuid().ToString("N")[..12];
        const string script = """
            import sys
            from multiprocessing import shared_memory, resource_tracker
            b = shared_memory.SharedMemory(sys.argv[1], create=True, size=64)
            b.buf[:5] = b"hello"
            sl = shared_memory.ShareableList([42, 2.5, True, "héllo wörld", b"raw\x01", None, -7], name=sys.argv[2])
            # Left for the .NET side: without this, this creator's resource tracker would remove them at exit.
            resource_tracker.unregister(b._name, "shared_memory")
            resource_tracker.unregister(sl.shm._name, "shared_memory")
            b.close()
            sl.shm.close()
            """;
        try
        {
            (int exit, _, string error) = Bounded.Command(python, "-c", script, blockName, listName);
            Assert.True(exit == 0, error);
            using var block = new mp.SharedMemory(blockName);
            Assert.Equal(64, block.Size);
            Assert.Equal("hello", Encoding.ASCII.GetString(block.Span[..5]));
            using var list = mp.ShareableList.Attach(listName);
            Assert.Equal([42L, 2.5, true, "héllo wörld", new byte[] { 114, 97, 119, 1 }, null, -7L], list.ToArray());
            list[3] = "changed";
            Assert.Equal("changed", list[3]);
            block.Dispose();
            list.Dispose();

            // We only attached: closing never removes a block someone else created.
            Assert.True(File.Exists("/dev/shm/" + blockName) && File.Exists("/dev/shm/" + listName));
        }
        finally
        {
            _ = Platform.SharedMemoryBackend.Current.Unlink(blockName);
            _ = Platform.SharedMemoryBackend.Current.Unlink(listName);
        }
    }
}
