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
}
