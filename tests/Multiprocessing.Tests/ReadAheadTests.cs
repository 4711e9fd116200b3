using System.Runtime.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>A connection reads small messages ahead; what it holds must stay visible and must not be lost.</summary>
public sealed class ReadAheadTests
{
    [Fact]
    public void A_message_already_read_ahead_is_seen_by_Poll_and_Wait()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.Send(1);
            a.Send(2);
            Assert.True(b.Poll(Bounded.Long));
            Assert.Equal(1, b.Recv<int>());

            // The second message may now sit in b's buffer rather than in the socket.
            Assert.True(b.Poll(TimeSpan.Zero));
            Assert.Equal([b], mp.Connection.Wait([b], TimeSpan.Zero));
            Assert.Equal(2, b.Recv<int>());
            Assert.False(b.Poll(TimeSpan.Zero));
            Assert.Empty(mp.Connection.Wait([b], TimeSpan.Zero));
        }
    }

    [Fact]
    public async Task Many_small_messages_and_large_ones_interleave_without_losing_bytes()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var sender = Task.Run(() =>
            {
                for (int i = 0; i < 300; i++)
                {
                    a.SendBytes(new byte[i % 3 == 0 ? 70_000 : i % 50]);
                    a.Send(i);
                }
            });
            var buffer = new byte[100_000];
            for (int i = 0; i < 300; i++)
            {
                Assert.True(b.Poll(Bounded.Long));
                Assert.Equal(i % 3 == 0 ? 70_000 : i % 50, b.RecvBytesInto(buffer));
                Assert.Equal(i, b.Recv<int>());
            }

            await sender.WaitAsync(Bounded.Long);
        }
    }

    [Fact]
    public void A_connection_holding_read_ahead_bytes_cannot_be_passed_on_until_they_are_received()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        (mp.Connection carrier, mp.Connection receiver) = mp.Pipe.Create();
        using (a)
        using (b)
        using (carrier)
        using (receiver)
        {
            a.Send(1);
            a.Send(2);
            Assert.True(b.Poll(Bounded.Long));
            Assert.Equal(1, b.Recv<int>());
            if (b.BufferedByteCount > 0)
            {
                var ex = Assert.Throws<SerializationException>(() => carrier.Send(b));
                Assert.Contains("already read", ex.Message, StringComparison.Ordinal);
                Assert.Equal(2, b.Recv<int>());
            }

            carrier.Send(b);
            Assert.True(receiver.Poll(Bounded.Long));
            using mp.Connection passed = receiver.Recv<mp.Connection>();
            a.Send(3);
            Assert.True(passed.Poll(Bounded.Long));
            Assert.Equal(3, passed.Recv<int>());
        }
    }

    [Fact]
    public async Task Descriptors_read_ahead_stay_with_their_own_message_among_small_and_large_ones()
    {
        const int Count = 120;
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        var pipes = new List<(mp.Connection, mp.Connection)>();
        try
        {
            for (int i = 0; i < Count; i += 3)
            {
                pipes.Add(mp.Pipe.Create());
            }

            // Sent while the receiver is behind: every read-ahead can run into the next messages and their descriptors.
            var sender = Task.Run(() =>
            {
                for (int i = 0; i < Count; i++)
                {
                    if (i % 3 == 0)
                    {
                        a.Send((i, pipes[i / 3].Item1));
                    }
                    else if (i % 7 == 1)
                    {
                        a.Send((i, new string('x', 20_000))); // longer than a read-ahead: read straight to its destination
                    }
                    else
                    {
                        a.Send((i, "small"));
                    }
                }
            });

            for (int i = 0; i < Count; i++)
            {
                Assert.True(b.Poll(Bounded.Long));
                if (i % 3 == 0)
                {
                    (int index, mp.Connection received) = b.Recv<(int, mp.Connection)>();
                    using (received)
                    {
                        Assert.Equal(i, index);
                        received.Send(i);
                        mp.Connection peer = pipes[i / 3].Item2;
                        Assert.True(peer.Poll(Bounded.Long), $"message {i} arrived with another message's connection");
                        Assert.Equal(i, peer.Recv<int>());
                    }
                }
                else
                {
                    (int index, string text) = b.Recv<(int, string)>();
                    Assert.Equal(i, index);
                    Assert.Equal(i % 7 == 1 ? 20_000 : 5, text.Length);
                }
            }

            await sender.WaitAsync(Bounded.Long);
        }
        finally
        {
            a.Dispose();
            b.Dispose();
            foreach ((mp.Connection first, mp.Connection second) in pipes)
            {
                first.Dispose();
                second.Dispose();
            }
        }
    }
}
