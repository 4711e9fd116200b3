using Multiprocessing.Sharing;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Named shared memory: creating, attaching, crossing to children, errors, and cleanup that never leaks.</summary>
public sealed class SharedMemoryTests
{
    private static string UniqueName() => "mp-test-" + Guid.NewGuid().ToString("N")[..16];

    private static bool Exists(string name) => File.Exists("/dev/shm/" + name);

    [Fact]
    public void A_created_block_gets_a_Python_style_name_and_is_seen_by_an_attached_one()
    {
        using var created = new mp.SharedMemory(create: true, size: 100);
        try
        {
            Assert.Matches("^psm_[0-9a-f]{8}$", created.Name);
            Assert.Equal(100, created.Size);
            Assert.True(Exists(created.Name));
            Assert.All(created.Span.ToArray(), b => Assert.Equal(0, b));
            created.Span[7] = 42;

            using var attached = new mp.SharedMemory("/" + created.Name);
            Assert.Equal(created.Name, attached.Name);
            Assert.Equal(42, attached.Span[7]);
            attached.Memory.Span[8] = 43;
            Assert.Equal(43, created.Span[8]);
            Assert.Equal($"SharedMemory('{created.Name}', size=100)", created.ToString());
        }
        finally
        {
            created.Unlink();
        }

        Assert.False(Exists(created.Name));
    }

    [Fact]
    public void Every_misuse_has_its_own_exception()
    {
        string name = UniqueName();
        using var block = new mp.SharedMemory(name, create: true, size: 10);
        try
        {
            var exists = Assert.Throws<IOException>(() => new mp.SharedMemory(name, create: true, size: 10));
            Assert.Contains("File exists", exists.Message);
            Assert.Throws<FileNotFoundException>(() => new mp.SharedMemory(UniqueName()));
            Assert.Throws<ArgumentOutOfRangeException>(() => new mp.SharedMemory(create: true, size: 0));
            Assert.Throws<ArgumentOutOfRangeException>(() => new mp.SharedMemory(create: true, size: -5));
            Assert.Throws<ArgumentOutOfRangeException>(() => new mp.SharedMemory(name, size: -1));
            Assert.Throws<ArgumentException>(() => new mp.SharedMemory());
            Assert.Throws<ArgumentException>(() => new mp.SharedMemory("a/b"));
        }
        finally
        {
            block.Unlink();
        }

        Assert.Throws<FileNotFoundException>(block.Unlink);
        block.Close();
        Assert.True(block.IsClosed);
        Assert.Throws<ObjectDisposedException>(() => block.Span[0]);
        Assert.Throws<ObjectDisposedException>(() => block.Memory);
        block.Dispose(); // twice is fine
    }

    [Fact]
    public void A_child_writes_into_a_captured_block_and_a_block_passed_as_argument_and_the_parent_sees_it()
    {
        using var captured = new mp.SharedMemory(create: true, size: 64);
        using var argument = new mp.SharedMemory(create: true, size: 64);
        try
        {
            captured.Span[0] = 1;
            var child = new mp.Process(() =>
            {
                if (captured.Span[0] != 1)
                {
                    throw new InvalidOperationException("the child did not see the parent's write");
                }

                captured.Span[1] = 2;
            });
            Bounded.Run(child);
            Assert.Equal(0, child.ExitCode);
            Assert.Equal(2, captured.Span[1]);

            var withArgument = new mp.Process<mp.SharedMemory, string>((block, name) =>
            {
                if (block.Name != name)
                {
                    throw new InvalidOperationException("wrong name");
                }

                block.Span.Fill(9);
            }, argument, argument.Name);
            Bounded.Run(withArgument);
            Assert.Equal(0, withArgument.ExitCode);
            Assert.All(argument.Span.ToArray(), b => Assert.Equal(9, b));
        }
        finally
        {
            captured.Unlink();
            argument.Unlink();
        }
    }

    [Fact]
    public void A_block_handed_to_a_child_works_even_after_its_creator_unlinked_it()
    {
        using var block = new mp.SharedMemory(create: true, size: 8);
        block.Unlink();
        var child = new mp.Process(() => block.Span[3] = 33);
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(33, block.Span[3]);
        block.Close();
        var refused = Assert.Throws<System.Runtime.Serialization.SerializationException>(() => new mp.Process(() => block.Span[0] = 1).Start());
        Assert.Contains("closed", refused.Message);
    }

    [Fact]
    public void Where_handles_cannot_travel_a_block_crosses_by_name_and_attaches()
    {
        using var block = new mp.SharedMemory(create: true, size: 16);
        try
        {
            block.Span[0] = 5;
            byte[] bytes = mp.Serialization.BinarySerializer.Default.Serialize(block);
            using var copy = mp.Serialization.BinarySerializer.Default.Deserialize<mp.SharedMemory>(bytes);
            Assert.Equal(block.Name, copy.Name);
            copy.Span[1] = 6;
            Assert.Equal(6, block.Span[1]);
        }
        finally
        {
            block.Unlink();
        }
    }

    [Theory]
    [InlineData("return")]
    [InlineData("throw")]
    [InlineData("kill")]
    public void A_tracked_block_is_removed_however_its_creator_ends_and_an_untracked_one_stays(string ending)
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using var child = new mp.Process(() =>
        {
            var tracked = new mp.SharedMemory(create: true, size: 4096);
            var outliving = new mp.SharedMemory(create: true, size: 4096, track: false);
            var list = new mp.ShareableList([1L, "two"]);
            tracked.Span[0] = 1;
            childEnd.Send(new[] { tracked.Name, outliving.Name, list.Name, TrackedBlocks.TrackerPid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            switch (ending)
            {
                case "kill":
                    Thread.Sleep(Timeout.Infinite);
                    break;
                case "throw":
                    throw new InvalidOperationException("the creator fails without closing anything");
            }
        });
        child.Start();
        string[] reply = Within.Call(parentEnd.Recv<string[]>);
        int trackerPid = int.Parse(reply[3], System.Globalization.CultureInfo.InvariantCulture);
        try
        {
            if (ending == "kill")
            {
                child.Kill();
            }

            Bounded.Join(child);
            Assert.Equal(ending switch { "kill" => -9, "throw" => 1, _ => 0 }, child.ExitCode);
            Assert.True(Bounded.ProcessEnds(trackerPid, Bounded.Long), "the tracker did not finish");
            string[] listing = Directory.GetFiles("/dev/shm").Select(Path.GetFileName).ToArray()!;
            Assert.DoesNotContain(reply[0], listing);
            Assert.DoesNotContain(reply[2], listing);
            Assert.Contains(reply[1], listing);
        }
        finally
        {
            _ = Platform.SharedMemoryBackend.Current.Unlink(reply[1]);
            parentEnd.Dispose();
            childEnd.Dispose();
        }
    }

    [Fact]
    public void A_process_that_only_attached_never_unlinks_and_never_starts_a_tracker()
    {
        using var block = new mp.SharedMemory(create: true, size: 32);
        try
        {
            string name = block.Name;
            (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
            using var child = new mp.Process(() =>
            {
                using var attached = new mp.SharedMemory(name);
                attached.Span[0] = 77;
                childEnd.Send(TrackedBlocks.TrackerPid is null);
            });
            child.Start();
            Assert.True(Within.Call(parentEnd.Recv<bool>), "an attaching child started a tracker");
            Bounded.Join(child);
            Assert.Equal(0, child.ExitCode);
            Assert.True(Exists(name), "the attaching child removed the block");
            using var again = new mp.SharedMemory(name);
            Assert.Equal(77, again.Span[0]);
        }
        finally
        {
            block.Unlink();
        }
    }

    [Fact]
    public void A_block_outlives_its_killed_creator_while_another_process_uses_it_and_goes_with_the_last_user()
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using var creator = new mp.Process(() =>
        {
            var block = new mp.SharedMemory(create: true, size: 64);
            block.Span[0] = 11;
            childEnd.Send(new[] { block.Name, TrackedBlocks.TrackerPid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            Thread.Sleep(Timeout.Infinite);
        });
        creator.Start();
        string[] reply = Within.Call(parentEnd.Recv<string[]>);
        string name = reply[0];
        int trackerPid = int.Parse(reply[1], System.Globalization.CultureInfo.InvariantCulture);
        var user = new mp.SharedMemory(name);
        try
        {
            creator.Kill();
            Bounded.Join(creator);

            // The tracker has seen its creator go and now waits for this process, the last user: the block stays.
            WaitUntilBlockedOnFlock(trackerPid);
            Assert.True(Exists(name));
            Assert.Equal(11, user.Span[0]);
            using (var latecomer = new mp.SharedMemory(name))
            {
                Assert.Equal(11, latecomer.Span[0]);
            }

            Assert.True(Exists(name));
        }
        finally
        {
            user.Dispose();
            parentEnd.Dispose();
            childEnd.Dispose();
        }

        Assert.True(Bounded.ProcessEnds(trackerPid, Bounded.Long), "the tracker did not finish once the last user left");
        Assert.False(Exists(name));
    }

    [Fact]
    public void Closing_its_last_mapping_does_not_remove_a_block_its_creator_may_still_hand_out_by_name()
    {
        var block = new mp.SharedMemory(create: true, size: 8);
        string name = block.Name;
        block.Span[0] = 3;
        block.Dispose();
        try
        {
            var child = new mp.Process(() =>
            {
                using var attached = new mp.SharedMemory(name);
                if (attached.Span[0] != 3)
                {
                    throw new InvalidOperationException("lost the contents");
                }
            });
            Bounded.Run(child);
            Assert.Equal(0, child.ExitCode);
        }
        finally
        {
            using var attached = new mp.SharedMemory(name);
            attached.Unlink();
        }
    }

    [Fact]
    public void The_manager_unlinks_every_block_it_made_when_disposed()
    {
        string[] names;
        mp.SharedMemory block;
        mp.ShareableList list;
        using (var manager = new mp.SharedMemoryManager())
        {
            block = manager.SharedMemory(128);
            list = manager.ShareableList(["a", 1L]);
            var unlinkedEarly = manager.SharedMemory(8);
            unlinkedEarly.Unlink();
            names = [block.Name, list.Name, unlinkedEarly.Name];
            Assert.Equal(names, manager.BlockNames);
            Assert.True(Exists(block.Name) && Exists(list.Name));
            var child = new mp.Process(() => list[1] = 2L);
            Bounded.Run(child);
            Assert.Equal(2L, list[1]);
        }

        Assert.All(names, name => Assert.False(Exists(name)));
        Assert.Equal(128, block.Span.Length); // mappings stay valid until closed
        block.Dispose();
        list.Dispose();
        var disposed = new mp.SharedMemoryManager();
        disposed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => disposed.SharedMemory(8));
    }

    /// <summary>Waits (bounded) until <paramref name="pid"/> is blocked in flock(LOCK_EX), as /proc/locks shows it.</summary>
    internal static void WaitUntilBlockedOnFlock(int pid)
    {
        // The kernel offers no event for "someone is now waiting on this lock"; /proc/locks is read until it says so.
        string needle = $" WRITE {pid} ";
        DateTime deadline = DateTime.UtcNow + Bounded.Long;
        while (!File.ReadLines("/proc/locks").Any(line => line.Contains("-> FLOCK", StringComparison.Ordinal) && line.Contains(needle, StringComparison.Ordinal)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"process {pid} never waited for the block's users");
            Assert.True(mp.Platform.ProcessWatch.IsAlive(pid), $"process {pid} ended instead of waiting for the block's users");
            Thread.Sleep(5);
        }
    }
}

/// <summary>Cleanup when the main process itself is killed, and when something kills the tracker.</summary>
public sealed class SharedMemoryCleanupTests
{
    private static readonly string s_appDll = Path.Combine(
        AppContext.BaseDirectory.Replace(Path.Combine("Multiprocessing.Tests", "bin"), Path.Combine("Multiprocessing.Tests.App", "bin"), StringComparison.Ordinal),
        "Multiprocessing.Tests.App.dll");

    [Fact]
    public void A_killed_main_process_leaves_nothing_tracked_in_dev_shm()
    {
        var info = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardOutput = true };
        info.ArgumentList.Add(s_appDll);
        info.ArgumentList.Add("shm-killed");
        using var app = System.Diagnostics.Process.Start(info)!;
        string[] names = [];
        try
        {
            string line = Within.Call(() =>
            {
                string? read;
                while ((read = app.StandardOutput.ReadLine()) is not null && !read.StartsWith("BLOCKS ", StringComparison.Ordinal))
                {
                }

                return read ?? "";
            });
            names = line.Split(' ')[1..];
            Assert.Equal(2, names.Length);

            // inotify tells when the tracker removes the block: no polling.
            using var removed = new ManualResetEventSlim();
            using var watcher = new FileSystemWatcher("/dev/shm", names[0]);
            watcher.Deleted += (_, _) => removed.Set();
            watcher.EnableRaisingEvents = true;
            Assert.True(File.Exists("/dev/shm/" + names[0]));
            app.Kill();
            Assert.True(app.WaitForExit(Bounded.Long));
            Assert.True(removed.Wait(Bounded.Long) || !File.Exists("/dev/shm/" + names[0]), "the killed app's tracked block was left in /dev/shm");
            Assert.True(File.Exists("/dev/shm/" + names[1]), "the untracked block did not outlive its creator");
        }
        finally
        {
            if (!app.HasExited)
            {
                app.Kill();
            }

            foreach (string name in names)
            {
                _ = Platform.SharedMemoryBackend.Current.Unlink(name);
            }
        }
    }

    [Fact]
    public void Where_no_tracker_can_start_a_tracked_block_is_refused_clearly_and_an_untracked_one_works()
    {
        (int exit, string output, string error) = Bounded.Command("dotnet", s_appDll, "shm-no-hooks");
        Assert.True(exit == 0, error);
        Assert.Contains("REFUSED A tracked shared memory block needs a tracker process", output);
        Assert.Contains("track: false", output);
        Assert.Contains("GONE", output);
        Assert.Contains("UNTRACKED 64", output);
    }

    [Fact]
    public void A_killed_tracker_is_replaced_and_the_replacement_still_cleans_up()
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using var child = new mp.Process(() =>
        {
            var before = new mp.SharedMemory(create: true, size: 64);
            mp.Process first = TrackedBlocks.Tracker!;
            first.Kill();
            first.Join();
            var after = new mp.SharedMemory(create: true, size: 64); // whichever comes first, this or the watch, replaces it
            childEnd.Send(new[] { before.Name, after.Name, first.Pid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), TrackedBlocks.TrackerPid!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture) });
            Thread.Sleep(Timeout.Infinite);
        });
        child.Start();
        string[] reply = Within.Call(parentEnd.Recv<string[]>);
        try
        {
            Assert.NotEqual(reply[2], reply[3]);
            child.Kill();
            Bounded.Join(child);
            Assert.True(Bounded.ProcessEnds(int.Parse(reply[3], System.Globalization.CultureInfo.InvariantCulture), Bounded.Long), "the replacement tracker did not finish");
            Assert.False(File.Exists("/dev/shm/" + reply[0]), "the block created before the tracker was killed was left");
            Assert.False(File.Exists("/dev/shm/" + reply[1]), "the block created after the tracker was killed was left");
        }
        finally
        {
            _ = Platform.SharedMemoryBackend.Current.Unlink(reply[0]);
            _ = Platform.SharedMemoryBackend.Current.Unlink(reply[1]);
            parentEnd.Dispose();
            childEnd.Dispose();
        }
    }
}
