using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>The shared-memory line between a local manager and its clients: what does not fit it, and ends that go away.</summary>
public sealed class ManagerTransportTests
{
    [Fact]
    public void Values_larger_than_the_channel_and_connections_cross_over_the_socket_beside_it()
    {
        using var manager = new mp.Manager();
        mp.ListProxy<byte[]> blobs = manager.List<byte[]>();
        byte[] big = new byte[(3 * mp.Platform.DuplexChannel.Capacity) + 17];
        new Random(8).NextBytes(big);
        blobs.Add(big); // the request is too large for the channel
        blobs.Add([1, 2, 3]);
        Assert.Equal(big, blobs[0]); // so is the answer
        Assert.Equal([1, 2, 3], blobs[1]);

        // A connection carries a descriptor, which only a socket can pass: there and back through the server.
        (mp.Connection mine, mp.Connection theirs) = mp.Pipe.Create();
        using (mine)
        using (theirs)
        {
            mp.ListProxy<mp.Connection> ends = manager.List<mp.Connection>();
            ends.Add(theirs);
            using mp.Connection back = ends[0];
            back.Send("through the server's copy");
            Assert.True(mine.Poll(Bounded.Long));
            Assert.Equal("through the server's copy", mine.Recv<string>());
        }

        Assert.Equal(2, blobs.Count); // and the line still works through shared memory
    }

    [Fact]
    public async Task A_call_waiting_in_a_server_that_is_killed_fails_with_IOException()
    {
        var manager = new mp.Manager();
        try
        {
            mp.IQueue<int> queue = manager.Queue<int>();
            mp.IEvent started = manager.Event();
            var waiting = Task.Run(() =>
            {
                started.Set();
                return queue.Get(Bounded.Long); // blocks in the server, on this thread's line
            });
            Assert.True(await started.WaitAsync().WaitAsync(Bounded.Long));
            manager.ServerProcess!.Kill();
            await Assert.ThrowsAsync<IOException>(() => waiting.WaitAsync(Bounded.Long));
        }
        finally
        {
            manager.Dispose();
        }
    }
}
