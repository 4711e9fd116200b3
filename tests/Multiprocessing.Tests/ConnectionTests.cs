using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using System.Runtime.Serialization;
using Multiprocessing.Platform;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

public sealed class ConnectionTests
{
    /// <summary>How long a test waits for something that should happen at once; a hang fails instead of stalling the run.</summary>
    private static readonly TimeSpan Soon = TimeSpan.FromSeconds(30);

    private sealed record Point(int X, int Y, string Label);

    /// <summary>A connection whose other end is a bare socket, so a test can write any bytes, malformed frames included.</summary>
    private static (mp.Connection Connection, Socket Raw) RawPair()
    {
        (Socket first, Socket second) = SocketPairs.Create();
        return (new mp.Connection(first, readable: true, writable: true), second);
    }

    /// <summary>Runs a blocking call on another thread and fails the test if it does not finish in time.</summary>
    private static T Within<T>(Func<T> call)
    {
        Task<T> task = Task.Factory.StartNew(call, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        Assert.True(task.Wait(Soon), "the call did not finish in time");
        return task.Result;
    }

    private static Exception ThrowsWithin(Action call) => Within(() =>
    {
        try
        {
            call();
        }
        catch (Exception ex)
        {
            return ex;
        }

        return new Xunit.Sdk.XunitException("no exception was thrown");
    });

    private static byte[] ReceiveBytes(mp.Connection connection, int? maxLength = null)
    {
        Assert.True(connection.Poll(Soon), "no message arrived");
        return connection.RecvBytes(maxLength);
    }

    private static T Receive<T>(mp.Connection connection)
    {
        Assert.True(connection.Poll(Soon), "no message arrived");
        return connection.Recv<T>();
    }

    private static byte[] Pattern(int length, int seed)
    {
        var data = new byte[length];
        for (int i = 0; i < length; i++)
        {
            data[i] = (byte)((i * 31) + (seed * 7) + (i >> 8));
        }

        return data;
    }

    // ---- Pipe shapes and flags ----

    [Fact]
    public void Duplex_pipe_sends_and_receives_at_both_ends()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create(duplex: true);
        using (a)
        using (b)
        {
            Assert.True(a.Readable && a.Writable && b.Readable && b.Writable);
            a.Send("from a");
            b.Send("from b");
            a.SendBytes([1, 2, 3]);
            b.SendBytes([4, 5]);
            Assert.Equal("from a", Receive<string>(b));
            Assert.Equal("from b", Receive<string>(a));
            Assert.Equal([1, 2, 3], ReceiveBytes(b));
            Assert.Equal([4, 5], ReceiveBytes(a));
        }
    }

    [Fact]
    public void One_way_pipe_receives_on_the_first_end_and_sends_on_the_second()
    {
        (mp.Connection reader, mp.Connection writer) = mp.Pipe.Create(duplex: false);
        using (reader)
        using (writer)
        {
            Assert.True(reader.Readable);
            Assert.False(reader.Writable);
            Assert.False(writer.Readable);
            Assert.True(writer.Writable);
            Assert.False(reader.Closed);
            Assert.False(writer.Closed);

            writer.Send(42);
            writer.SendBytes([9]);
            Assert.Equal(42, Receive<int>(reader));
            Assert.Equal([9], ReceiveBytes(reader));
        }
    }

    [Fact]
    public async Task Sending_on_the_read_only_end_throws_InvalidOperationException()
    {
        (mp.Connection reader, mp.Connection writer) = mp.Pipe.Create(duplex: false);
        using (reader)
        using (writer)
        {
            Assert.Throws<InvalidOperationException>(() => reader.Send("x"));
            Assert.Throws<InvalidOperationException>(() => reader.SendBytes([1]));
            Assert.Throws<InvalidOperationException>(() => reader.SendBytes(new byte[4], 0, 4));
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await reader.SendAsync("x"));
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await reader.SendBytesAsync(new byte[1]));

            // The misuse did not break the pipe.
            writer.Send("still fine");
            Assert.Equal("still fine", Receive<string>(reader));
        }
    }

    [Fact]
    public async Task Receiving_on_the_write_only_end_throws_InvalidOperationException()
    {
        (mp.Connection reader, mp.Connection writer) = mp.Pipe.Create(duplex: false);
        using (reader)
        using (writer)
        {
            Assert.Throws<InvalidOperationException>(() => writer.Recv());
            Assert.Throws<InvalidOperationException>(() => writer.Recv<string>());
            Assert.Throws<InvalidOperationException>(() => writer.RecvBytes());
            Assert.Throws<InvalidOperationException>(() => writer.RecvBytesInto(new byte[8]));
            Assert.Throws<InvalidOperationException>(() => writer.Poll());
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.RecvAsync<string>());
            await Assert.ThrowsAsync<InvalidOperationException>(async () => await writer.RecvBytesAsync());
        }
    }

    [Fact]
    public void Closing_one_end_clears_its_flags_and_leaves_the_other_end_alone()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (b)
        {
            a.Close();
            Assert.True(a.Closed);
            Assert.False(a.Readable);
            Assert.False(a.Writable);
            Assert.False(b.Closed);
            Assert.True(b.Readable);
            Assert.True(b.Writable);
        }

        Assert.True(b.Closed);
    }

    // ---- Objects ----

    private static void AssertRoundTrip<T>(T value)
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.Send(value);
            Assert.Equal(value, Receive<T>(b));
        }
    }

    [Fact]
    public void Objects_of_many_kinds_round_trip_as_the_type_asked_for()
    {
        AssertRoundTrip(0);
        AssertRoundTrip(-123456789L);
        AssertRoundTrip(3.25);
        AssertRoundTrip(true);
        AssertRoundTrip('λ');
        AssertRoundTrip("");
        AssertRoundTrip("héllo wörld ✓");
        AssertRoundTrip<string?>(null);
        AssertRoundTrip(Guid.NewGuid());
        AssertRoundTrip(new DateTime(2024, 2, 29, 12, 0, 0, DateTimeKind.Utc));
        AssertRoundTrip(TimeSpan.FromMinutes(90));
        AssertRoundTrip(new List<string> { "a", "", "c" });
        AssertRoundTrip(new[] { 1, 2, 3 });
        AssertRoundTrip(new Dictionary<string, int> { ["one"] = 1, ["two"] = 2 });
        AssertRoundTrip((1, "two", 3.0));
        AssertRoundTrip(new Point(3, -4, "p"));
        AssertRoundTrip(Pattern(1000, 5));
    }

    [Fact]
    public void Untyped_Recv_returns_the_object_as_it_was_sent()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.Send(42);
            a.Send("text");
            a.Send<object?>(null);
            a.Send(new List<int> { 1, 2 });
            a.Send(new Point(1, 2, "q"));

            Assert.True(b.Poll(Soon));
            Assert.Equal(42, Assert.IsType<int>(b.Recv()));
            Assert.True(b.Poll(Soon));
            Assert.Equal("text", Assert.IsType<string>(b.Recv()));
            Assert.True(b.Poll(Soon));
            Assert.Null(b.Recv());
            Assert.True(b.Poll(Soon));
            Assert.Equal([1, 2], Assert.IsType<List<int>>(b.Recv()));
            Assert.True(b.Poll(Soon));
            Assert.Equal(new Point(1, 2, "q"), Assert.IsType<Point>(b.Recv()));
        }
    }

    // ---- Bytes ----

    [Fact]
    public void SendBytes_sends_a_span_or_the_given_slice_of_an_array()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            byte[] source = [10, 11, 12, 13, 14, 15];
            a.SendBytes(source.AsSpan(1, 2));
            a.SendBytes(source, 2, 3);
            a.SendBytes(source, 0, source.Length);
            a.SendBytes(source, source.Length, 0);
            Assert.Equal([11, 12], ReceiveBytes(b));
            Assert.Equal([12, 13, 14], ReceiveBytes(b));
            Assert.Equal(source, ReceiveBytes(b));
            Assert.Empty(ReceiveBytes(b));
        }
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(11, 0)]
    [InlineData(0, 11)]
    [InlineData(5, 6)]
    [InlineData(0, -1)]
    [InlineData(int.MaxValue, 1)]
    [InlineData(1, int.MaxValue)]
    [InlineData(int.MinValue, 0)]
    public void SendBytes_with_an_offset_or_size_outside_the_buffer_throws_and_sends_nothing(int offset, int size)
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => a.SendBytes(new byte[10], offset, size));
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public void SendBytes_with_a_null_array_throws_ArgumentNullException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentNullException>(() => a.SendBytes(null!, 0, 0));
            Assert.Throws<ArgumentNullException>(() => b.RecvBytesInto(null!));
        }
    }

    [Fact]
    public void RecvBytes_accepts_a_message_exactly_as_long_as_the_maximum()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes(Pattern(5, 1));
            a.SendBytes([]);
            Assert.Equal(Pattern(5, 1), ReceiveBytes(b, maxLength: 5));
            Assert.Empty(ReceiveBytes(b, maxLength: 0));
            Assert.True(b.Readable);
        }
    }

    [Fact]
    public void RecvBytes_of_a_message_over_the_maximum_throws_IOException_and_the_end_stops_receiving()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes(Pattern(6, 1));
            Assert.True(b.Poll(Soon));
            Assert.Throws<IOException>(() => b.RecvBytes(maxLength: 5));

            Assert.False(b.Readable);
            Assert.True(b.Writable);
            Assert.False(b.Closed);
            Assert.Throws<InvalidOperationException>(() => b.RecvBytes());
            Assert.Throws<InvalidOperationException>(() => b.Recv());

            // It can still send.
            b.Send("reply");
            Assert.Equal("reply", Receive<string>(a));
        }
    }

    [Fact]
    public async Task RecvBytesAsync_of_a_message_over_the_maximum_throws_IOException_and_the_end_stops_receiving()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes(Pattern(100, 1));
            await Assert.ThrowsAsync<IOException>(async () => await b.RecvBytesAsync(maxLength: 99).AsTask().WaitAsync(Soon));
            Assert.False(b.Readable);
        }
    }

    [Fact]
    public void RecvBytes_with_a_negative_maximum_throws_ArgumentOutOfRangeException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => b.RecvBytes(-1));
        }
    }

    [Fact]
    public void RecvBytesInto_writes_at_the_offset_and_returns_the_message_length()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes([1, 2, 3]);
            a.SendBytes([7, 8]);
            a.SendBytes([]);

            byte[] buffer = [0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE];
            Assert.True(b.Poll(Soon));
            Assert.Equal(3, b.RecvBytesInto(buffer));
            Assert.Equal([1, 2, 3, 0xEE, 0xEE, 0xEE], buffer);
            Assert.True(b.Poll(Soon));
            Assert.Equal(2, b.RecvBytesInto(buffer, 4));
            Assert.Equal([1, 2, 3, 0xEE, 7, 8], buffer);
            Assert.True(b.Poll(Soon));
            Assert.Equal(0, b.RecvBytesInto(buffer, buffer.Length));
            Assert.Equal([1, 2, 3, 0xEE, 7, 8], buffer);
        }
    }

    [Fact]
    public void RecvBytesInto_a_buffer_too_small_throws_BufferTooShortException_carrying_the_whole_message()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            byte[] big = Pattern(40_000, 3);
            a.SendBytes(big);
            a.SendBytes([1, 2, 3, 4]);
            a.SendBytes([5]);

            Assert.True(b.Poll(Soon));
            var tooShort = Assert.Throws<mp.BufferTooShortException>(() => b.RecvBytesInto(new byte[39_999]));
            Assert.Equal(big, tooShort.Payload);

            // The offset counts: four bytes do not fit after offset 5 of 8.
            byte[] buffer = new byte[8];
            Assert.True(b.Poll(Soon));
            tooShort = Assert.Throws<mp.BufferTooShortException>(() => b.RecvBytesInto(buffer, 5));
            Assert.Equal([1, 2, 3, 4], tooShort.Payload);
            Assert.Equal(new byte[8], buffer);

            // Nothing was lost or left behind: the next message is intact.
            Assert.True(b.Readable);
            Assert.True(b.Poll(Soon));
            Assert.Equal(1, b.RecvBytesInto(buffer, 7));
            Assert.Equal(5, buffer[7]);
        }
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(9)]
    [InlineData(int.MinValue)]
    public void RecvBytesInto_with_an_offset_outside_the_buffer_throws_and_consumes_nothing(int offset)
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes([1]);
            Assert.Throws<ArgumentOutOfRangeException>(() => b.RecvBytesInto(new byte[8], offset));
            Assert.Equal([1], ReceiveBytes(b));
        }
    }

    [Fact]
    public async Task Zero_length_messages_are_messages()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes([]);
            a.SendBytes(ReadOnlySpan<byte>.Empty);
            a.SendBytes(new byte[3], 3, 0);
            await a.SendBytesAsync(ReadOnlyMemory<byte>.Empty);
            a.SendBytes([42]);

            Assert.True(b.Poll(Soon));
            Assert.Empty(b.RecvBytes());
            Assert.True(b.Poll(Soon));
            Assert.Empty(b.RecvBytes(maxLength: 0));
            Assert.True(b.Poll(Soon));
            Assert.Equal(0, b.RecvBytesInto([]));
            Assert.Empty(await b.RecvBytesAsync().AsTask().WaitAsync(Soon));
            Assert.Equal([42], ReceiveBytes(b));
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public async Task Message_boundaries_are_kept_for_many_small_messages_sent_back_to_back()
    {
        const int Count = 20_000;
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task sender = Task.Factory.StartNew(() =>
            {
                for (int i = 0; i < Count; i++)
                {
                    a.SendBytes(Pattern(i % 13, i));
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            for (int i = 0; i < Count; i++)
            {
                byte[] message = ReceiveBytes(b);
                if (!message.AsSpan().SequenceEqual(Pattern(i % 13, i)))
                {
                    Assert.Fail($"message {i} was {message.Length} bytes, not the {i % 13} sent");
                }
            }

            await sender.WaitAsync(Soon);
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public async Task A_16_MiB_message_round_trips_as_bytes_and_as_an_object()
    {
        byte[] big = new byte[16 << 20];
        new Random(16).NextBytes(big);
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task sender = Task.Factory.StartNew(() =>
            {
                a.SendBytes(big);
                a.Send(big);
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

            Assert.True(ReceiveBytes(b).AsSpan().SequenceEqual(big));
            Assert.True(Receive<byte[]>(b).AsSpan().SequenceEqual(big));
            await sender.WaitAsync(Soon);

            // And into a caller's buffer, in the other direction.
            sender = Task.Factory.StartNew(() => b.SendBytes(big, 0, big.Length), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            byte[] into = new byte[big.Length + 1];
            Assert.True(a.Poll(Soon));
            Assert.Equal(big.Length, a.RecvBytesInto(into, 1));
            Assert.True(into.AsSpan(1).SequenceEqual(big));
            await sender.WaitAsync(Soon);
        }
    }

    // ---- End of stream and malformed input ----

    [Fact]
    public async Task Receiving_after_the_peer_closed_with_nothing_left_throws_EndOfStreamException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (b)
        {
            a.Send("last words");
            a.SendBytes([1]);
            a.Close();

            // What was sent before the close is still delivered.
            Assert.Equal("last words", Receive<string>(b));
            Assert.Equal([1], ReceiveBytes(b));

            Assert.True(b.Poll(TimeSpan.Zero), "end of stream counts as ready");
            Assert.IsType<EndOfStreamException>(ThrowsWithin(() => b.Recv()));
            Assert.IsType<EndOfStreamException>(ThrowsWithin(() => b.Recv<int>()));
            Assert.IsType<EndOfStreamException>(ThrowsWithin(() => b.RecvBytes()));
            Assert.IsType<EndOfStreamException>(ThrowsWithin(() => b.RecvBytesInto(new byte[4])));
            await Assert.ThrowsAsync<EndOfStreamException>(async () => await b.RecvBytesAsync().AsTask().WaitAsync(Soon));
            await Assert.ThrowsAsync<EndOfStreamException>(async () => await b.RecvAsync<string>().AsTask().WaitAsync(Soon));
        }
    }

    [Fact]
    public void Sending_after_the_peer_closed_throws_IOException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        {
            b.Close();
            Assert.Throws<IOException>(() => a.SendBytes([1, 2, 3]));
            Assert.Throws<IOException>(() => a.Send("x"));
        }
    }

    public static TheoryData<byte[]> TruncatedFrames => new()
    {
        new byte[] { 0x00 },                                     // inside the header
        new byte[] { 0x00, 0x00, 0x00 },                         // one byte short of a header
        new byte[] { 0x00, 0x00, 0x00, 0x0A, 1, 2, 3 },          // 3 of 10 payload bytes
        new byte[] { 0x00, 0x00, 0x00, 0x01 },                   // header and no payload
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00 },       // inside the 8-byte long header
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF },                   // the long header announced, then nothing
        new byte[] { 0x00, 0x10, 0x00, 0x01, 9, 9 },             // over a MiB announced, two bytes sent
    };

    [Theory]
    [MemberData(nameof(TruncatedFrames))]
    public void End_of_stream_inside_a_message_throws_IOException(byte[] frame)
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        {
            raw.Send(frame);
            raw.Dispose();
            Exception thrown = ThrowsWithin(() => connection.RecvBytes());
            Assert.IsType<IOException>(thrown);
        }
    }

    [Theory]
    [MemberData(nameof(TruncatedFrames))]
    public void End_of_stream_inside_a_message_throws_IOException_from_Recv(byte[] frame)
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        {
            raw.Send(frame);
            raw.Dispose();
            Assert.IsType<IOException>(ThrowsWithin(() => connection.Recv()));
        }
    }

    [Theory]
    [MemberData(nameof(TruncatedFrames))]
    public async Task End_of_stream_inside_a_message_throws_IOException_from_RecvBytesAsync(byte[] frame)
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        {
            raw.Send(frame);
            raw.Dispose();
            await Assert.ThrowsAsync<IOException>(async () => await connection.RecvBytesAsync().AsTask().WaitAsync(Soon));
        }
    }

    /// <summary>Lengths no real message can have: rejected at once, whether or not the peer is still there.</summary>
    public static TheoryData<byte[]> ImpossibleHeaders => new()
    {
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFE },                                                 // −2
        new byte[] { 0x80, 0x00, 0x00, 0x00 },                                                 // int.MinValue
        new byte[] { 0x7F, 0xFF, 0xFF, 0xFF },                                                 // int.MaxValue: over Array.MaxLength
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, // long form, ulong.MaxValue
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 }, // long form, negative as a long
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00 }, // long form, 4 GiB
    };

    /// <summary>Lengths that could be real but whose payload never comes: the reader must not allocate what is claimed.</summary>
    public static TheoryData<byte[]> UnfulfilledHeaders => new()
    {
        new byte[] { 0x7F, 0xFF, 0xFF, 0x00 },                                                 // just under Array.MaxLength
        new byte[] { 0x40, 0x00, 0x00, 0x00 },                                                 // 1 GiB
        new byte[] { 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x00, 0x7F, 0xFF, 0xFF, 0x00 }, // long form, just under Array.MaxLength
    };

    [Theory]
    [MemberData(nameof(ImpossibleHeaders))]
    public void Impossible_lengths_throw_IOException_at_once_even_while_the_peer_is_open(byte[] header)
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        using (raw)
        {
            raw.Send(header);
            Assert.True(connection.Poll(Soon));
            (Exception thrown, long allocated) = Within(() =>
            {
                long before = GC.GetAllocatedBytesForCurrentThread();
                try
                {
                    connection.RecvBytes();
                    return (new Xunit.Sdk.XunitException("no exception was thrown"), 0L);
                }
                catch (Exception ex)
                {
                    return (ex, GC.GetAllocatedBytesForCurrentThread() - before);
                }
            });
            Assert.IsType<IOException>(thrown);
            Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated");
        }
    }

    [Theory]
    [MemberData(nameof(ImpossibleHeaders))]
    [MemberData(nameof(UnfulfilledHeaders))]
    public void Absurd_lengths_then_end_of_stream_throw_IOException_without_a_big_allocation(byte[] header)
    {
        foreach (bool asObject in new[] { false, true })
        {
            (mp.Connection connection, Socket raw) = RawPair();
            using (connection)
            {
                raw.Send(header);
                raw.Dispose();
                (Exception thrown, long allocated) = Within(() =>
                {
                    long before = GC.GetAllocatedBytesForCurrentThread();
                    try
                    {
                        _ = asObject ? connection.Recv() : connection.RecvBytes();
                        return (new Xunit.Sdk.XunitException("no exception was thrown"), 0L);
                    }
                    catch (Exception ex)
                    {
                        return (ex, GC.GetAllocatedBytesForCurrentThread() - before);
                    }
                });
                Assert.IsType<IOException>(thrown);
                Assert.True(allocated < 16 << 20, $"{allocated} bytes were allocated");
            }
        }
    }

    [Theory]
    [MemberData(nameof(ImpossibleHeaders))]
    [MemberData(nameof(UnfulfilledHeaders))]
    public async Task Absurd_lengths_then_end_of_stream_throw_IOException_from_RecvBytesAsync(byte[] header)
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        {
            raw.Send(header);
            raw.Dispose();
            await Assert.ThrowsAsync<IOException>(async () => await connection.RecvBytesAsync().AsTask().WaitAsync(Soon));
        }
    }

    [Fact]
    public void A_frame_written_by_hand_in_CPython_format_is_received()
    {
        (mp.Connection connection, Socket raw) = RawPair();
        using (connection)
        using (raw)
        {
            byte[] frame = new byte[4 + 3 + 12 + 2];
            BinaryPrimitives.WriteInt32BigEndian(frame, 3);
            new byte[] { 1, 2, 3 }.CopyTo(frame, 4);
            BinaryPrimitives.WriteInt32BigEndian(frame.AsSpan(7), -1);
            BinaryPrimitives.WriteUInt64BigEndian(frame.AsSpan(11), 2);
            frame[19] = 8;
            frame[20] = 9;
            raw.Send(frame);
            Assert.Equal([1, 2, 3], ReceiveBytes(connection));
            Assert.Equal([8, 9], ReceiveBytes(connection));

            // And what the connection sends is that format.
            connection.SendBytes([5, 6]);
            byte[] received = new byte[6];
            int n = 0;
            while (n < 6)
            {
                Assert.True(raw.Poll(Soon, SelectMode.SelectRead));
                n += raw.Receive(received.AsSpan(n));
            }

            Assert.Equal([0, 0, 0, 2, 5, 6], received);
        }
    }

    // ---- Poll ----

    [Fact]
    public void Poll_with_zero_timeout_answers_at_once()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var clock = Stopwatch.StartNew();
            Assert.False(b.Poll(TimeSpan.Zero));
            Assert.False(b.Poll());
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));

            a.SendBytes([1]);
            Assert.True(b.Poll(Soon));
            Assert.True(b.Poll(TimeSpan.Zero));
            Assert.True(b.Poll(), "polling does not consume the message");
            Assert.Equal([1], b.RecvBytes());
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public void Poll_with_a_short_timeout_waits_it_out_and_returns_false()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var clock = Stopwatch.StartNew();
            Assert.False(b.Poll(TimeSpan.FromMilliseconds(100)));
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"returned after {clock.Elapsed}");
        }
    }

    [Fact]
    public async Task Poll_returns_true_once_a_message_arrives_from_another_thread()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task sender = Task.Run(async () =>
            {
                await Task.Delay(100);
                a.Send("hello");
            });
            Assert.True(b.Poll(Soon));
            Assert.Equal("hello", b.Recv<string>());
            await sender.WaitAsync(Soon);
        }
    }

    [Fact]
    public void Poll_returns_true_at_end_of_stream()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (b)
        {
            Assert.False(b.Poll(TimeSpan.Zero));
            a.Close();
            Assert.True(b.Poll(Soon));
            Assert.True(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public async Task Poll_with_an_infinite_timeout_waits_for_a_message_from_another_thread()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task<bool> poll = Task.Factory.StartNew(() => b.Poll(Timeout.InfiniteTimeSpan), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            await Task.Delay(200);
            Assert.False(poll.IsCompleted, "an infinite poll returned with nothing to read");
            a.Send(1);
            Assert.True(await poll.WaitAsync(Soon));
            Assert.Equal(1, b.Recv<int>());
        }
    }

    [Theory]
    [InlineData(-1)]                       // one tick below zero
    [InlineData(-20_000)]                  // −2 ms
    [InlineData(-9_999)]                   // just above −1 ms, which is InfiniteTimeSpan
    [InlineData(-10_001)]                  // just below it
    [InlineData(-10_000_000)]              // −1 s
    [InlineData(long.MinValue)]
    public void Poll_with_a_negative_timeout_other_than_infinite_throws(long ticks)
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => b.Poll(TimeSpan.FromTicks(ticks)));
        }
    }

    [Fact]
    public void Poll_with_a_huge_timeout_is_accepted_and_returns_when_data_is_there()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.SendBytes([1]);
            Assert.True(Within(() => b.Poll(TimeSpan.MaxValue)));
            Assert.True(Within(() => b.Poll(TimeSpan.FromDays(100))));
        }
    }

    // ---- Wait ----

    [Fact]
    public void Wait_returns_exactly_the_ready_connections_in_the_order_given()
    {
        var pipes = Enumerable.Range(0, 4).Select(_ => mp.Pipe.Create()).ToArray();
        try
        {
            mp.Connection[] readers = pipes.Select(p => p.Second).ToArray();
            pipes[1].First.Send("one");
            pipes[3].First.SendBytes([3]);

            Assert.Equal([readers[1], readers[3]], mp.Connection.Wait(readers, Soon));
            Assert.Equal([readers[3], readers[1]], mp.Connection.Wait([readers[3], readers[0], readers[1]], Soon));

            pipes[2].First.Close(); // end of stream is ready too
            // Wait for it alone first: a child another test is starting can hold a copy of the socket for a moment
            // (between its fork and its exec), which delays the end of stream; Wait on all returns as soon as any is ready.
            Assert.Equal([readers[2]], mp.Connection.Wait([readers[2]], Soon));
            Assert.Equal([readers[1], readers[2], readers[3]], mp.Connection.Wait(readers, Soon));

            Assert.Equal("one", readers[1].Recv<string>());
            Assert.Equal([readers[2], readers[3]], mp.Connection.Wait(readers, Soon));
        }
        finally
        {
            foreach ((mp.Connection first, mp.Connection second) in pipes)
            {
                first.Dispose();
                second.Dispose();
            }
        }
    }

    [Fact]
    public async Task Wait_blocks_until_a_connection_becomes_ready()
    {
        (mp.Connection a1, mp.Connection b1) = mp.Pipe.Create();
        (mp.Connection a2, mp.Connection b2) = mp.Pipe.Create();
        using (a1)
        using (b1)
        using (a2)
        using (b2)
        {
            Task sender = Task.Run(async () =>
            {
                await Task.Delay(100);
                a2.Send(2);
            });
            Assert.Equal([b2], Within(() => mp.Connection.Wait([b1, b2])));
            await sender.WaitAsync(Soon);
        }
    }

    [Fact]
    public async Task Wait_with_an_infinite_timeout_waits_until_something_is_ready()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task<IReadOnlyList<object>> wait = Task.Factory.StartNew(() => mp.Connection.Wait([b], Timeout.InfiniteTimeSpan), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            await Task.Delay(200);
            Assert.False(wait.IsCompleted, "an infinite wait returned with nothing ready");
            a.Send(1);
            Assert.Equal([b], await wait.WaitAsync(Soon));
        }
    }

    [Fact]
    public void Wait_returns_an_empty_list_when_the_timeout_passes()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var clock = Stopwatch.StartNew();
            Assert.Empty(mp.Connection.Wait([a, b], TimeSpan.FromMilliseconds(100)));
            Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(90), $"returned after {clock.Elapsed}");
            Assert.Empty(mp.Connection.Wait([], TimeSpan.FromMilliseconds(10)));
        }
    }

    [Fact]
    public void Wait_with_a_zero_or_negative_timeout_only_polls()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var clock = Stopwatch.StartNew();
            Assert.Empty(mp.Connection.Wait([a, b], TimeSpan.Zero));
            Assert.Empty(mp.Connection.Wait([a, b], TimeSpan.FromSeconds(-5)));
            Assert.Empty(mp.Connection.Wait([a, b], TimeSpan.MinValue));
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));

            a.SendBytes([1]);
            Assert.True(b.Poll(Soon));
            Assert.Equal([b], mp.Connection.Wait([a, b], TimeSpan.Zero));
            Assert.Equal([b], mp.Connection.Wait([a, b], TimeSpan.FromSeconds(-5)));
        }
    }

    [Fact]
    public void Wait_includes_a_process_once_it_has_ended()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        using (var process = new mp.Process(() => { }))
        {
            process.Start();
            Assert.Equal([process], mp.Connection.Wait([b, process], Bounded.Long));
            Bounded.Join(process);

            a.Send(1);
            Assert.True(b.Poll(Soon));
            Assert.Equal([b, process, process.Sentinel], mp.Connection.Wait([b, process, process.Sentinel], TimeSpan.Zero));
        }
    }

    [Fact]
    public void Wait_accepts_plain_sockets()
    {
        (Socket first, Socket second) = SocketPairs.Create();
        using (first)
        using (second)
        {
            Assert.Empty(mp.Connection.Wait([second], TimeSpan.Zero));
            first.Send([1]);
            Assert.Equal([second], mp.Connection.Wait([second], Soon));
        }

        Assert.Throws<ObjectDisposedException>(() => mp.Connection.Wait([second], TimeSpan.Zero));
        Assert.Throws<ObjectDisposedException>(() => mp.Connection.Wait([second.SafeHandle], TimeSpan.Zero));
    }

    [Fact]
    public void Wait_on_an_unsupported_item_throws_ArgumentException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Assert.Throws<ArgumentException>(() => mp.Connection.Wait([b, "not a connection"], TimeSpan.Zero));
            Assert.Throws<ArgumentException>(() => mp.Connection.Wait([42], TimeSpan.Zero));
            Assert.Throws<ArgumentException>(() => mp.Connection.Wait([b, null!], TimeSpan.Zero));
            Assert.Throws<ArgumentNullException>(() => mp.Connection.Wait(null!, TimeSpan.Zero));
        }
    }

    [Fact]
    public void Wait_on_an_unstarted_process_throws_InvalidOperationException()
    {
        using var process = new mp.Process(() => { });
        Assert.Throws<InvalidOperationException>(() => mp.Connection.Wait([process], TimeSpan.Zero));
    }

    // ---- Async twins ----

    [Fact]
    public async Task Async_twins_round_trip_objects_and_bytes()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            await a.SendAsync(new Point(1, 2, "async"));
            Assert.Equal(new Point(1, 2, "async"), await b.RecvAsync<Point>().AsTask().WaitAsync(Soon));

            await b.SendBytesAsync(new byte[] { 1, 2, 3 });
            Assert.Equal([1, 2, 3], await a.RecvBytesAsync().AsTask().WaitAsync(Soon));

            // The twins share the framing with the blocking calls.
            await a.SendAsync(new List<string> { "x", "y" });
            Assert.Equal(["x", "y"], Receive<List<string>>(b));
            a.Send(7);
            Assert.Equal(7, await b.RecvAsync<int>().AsTask().WaitAsync(Soon));
            a.SendBytes([4, 5]);
            Assert.Equal([4, 5], await b.RecvBytesAsync(maxLength: 2).AsTask().WaitAsync(Soon));
            await a.SendBytesAsync(new byte[] { 6 });
            Assert.Equal([6], ReceiveBytes(b));
        }
    }

    [Fact]
    public async Task Async_twins_carry_large_messages_both_ways_at_once()
    {
        byte[] big = Pattern(3 << 20, 9);
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            Task aSends = a.SendBytesAsync(big).AsTask();
            Task bSends = b.SendAsync(big).AsTask();
            Task<byte[]> bReceives = b.RecvBytesAsync().AsTask();
            Task<byte[]> aReceives = a.RecvAsync<byte[]>().AsTask();
            await Task.WhenAll(aSends, bSends, bReceives, aReceives).WaitAsync(Soon);
            Assert.True((await bReceives).AsSpan().SequenceEqual(big));
            Assert.True((await aReceives).AsSpan().SequenceEqual(big));
        }
    }

    [Fact]
    public async Task RecvAsync_cancelled_while_waiting_throws_and_the_connection_stays_usable()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await b.RecvAsync<string>(cts.Token).AsTask().WaitAsync(Soon));
            }

            using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
            {
                await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await b.RecvBytesAsync(cancellationToken: cts.Token).AsTask().WaitAsync(Soon));
            }

            await Assert.ThrowsAnyAsync<OperationCanceledException>(async () => await b.RecvAsync<string>(new CancellationToken(canceled: true)));

            Assert.False(b.Closed);
            Assert.True(b.Readable);
            a.Send("later");
            Assert.Equal("later", await b.RecvAsync<string>().AsTask().WaitAsync(Soon));
            a.Send("and blocking");
            Assert.Equal("and blocking", Receive<string>(b));
        }
    }

    // ---- Concurrency ----

    private const int Senders = 4;
    private const int PerSender = 500;

    /// <summary>The size of message <paramref name="sequence"/> from <paramref name="sender"/>: 0 to 40 KiB; only sender 0's first message is empty.</summary>
    private static int MessageSize(int sender, int sequence) =>
        sender == 0 && sequence == 0 ? 0 : 3 + (int)(((uint)sequence * 7919u + (uint)sender * 104729u) % (40 * 1024 - 2));

    /// <summary>Byte 0 is the sender, bytes 1–2 the sequence number, the rest a pattern of both.</summary>
    private static byte[] Message(int sender, int sequence)
    {
        var data = new byte[MessageSize(sender, sequence)];
        if (data.Length > 0)
        {
            data[0] = (byte)sender;
            BinaryPrimitives.WriteUInt16BigEndian(data.AsSpan(1), (ushort)sequence);
            for (int i = 3; i < data.Length; i++)
            {
                data[i] = (byte)(sender * 71 + sequence * 13 + i);
            }
        }

        return data;
    }

    [Fact]
    public async Task Concurrent_senders_on_one_end_never_interleave_their_messages()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            using var start = new System.Threading.Barrier(Senders);
            Task[] senders = Enumerable.Range(0, Senders).Select(sender => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                for (int sequence = 0; sequence < PerSender; sequence++)
                {
                    a.SendBytes(Message(sender, sequence));
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

            int[] next = new int[Senders];
            for (int received = 0; received < Senders * PerSender; received++)
            {
                byte[] message = ReceiveBytes(b);
                int sender = message.Length == 0 ? 0 : message[0];
                Assert.InRange(sender, 0, Senders - 1);
                int sequence = next[sender]++;
                if (!message.AsSpan().SequenceEqual(Message(sender, sequence)))
                {
                    Assert.Fail($"message {received} ({message.Length} bytes) is not message {sequence} of sender {sender}");
                }
            }

            await Task.WhenAll(senders).WaitAsync(Soon);
            Assert.All(next, count => Assert.Equal(PerSender, count));
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }

    [Fact]
    public async Task Concurrent_object_senders_and_async_senders_never_interleave_their_messages()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            using var start = new System.Threading.Barrier(Senders);
            Task[] senders = Enumerable.Range(0, Senders).Select(sender => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                for (int sequence = 0; sequence < PerSender; sequence++)
                {
                    var value = (sender, sequence, new string((char)('a' + sender), MessageSize(sender, sequence) / 8));
                    if (sender % 2 == 0)
                    {
                        a.Send(value);
                    }
                    else
                    {
                        a.SendAsync(value).AsTask().GetAwaiter().GetResult();
                    }
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

            int[] next = new int[Senders];
            for (int received = 0; received < Senders * PerSender; received++)
            {
                (int sender, int sequence, string text) = Receive<(int, int, string)>(b);
                Assert.Equal(next[sender]++, sequence);
                Assert.Equal(new string((char)('a' + sender), MessageSize(sender, sequence) / 8), text);
            }

            await Task.WhenAll(senders).WaitAsync(Soon);
        }
    }

    // ---- Close and Dispose ----

    [Fact]
    public void Closing_or_disposing_twice_is_harmless()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        a.Close();
        a.Close();
        a.Dispose();
        b.Dispose();
        b.Close();
        Assert.True(a.Closed);
        Assert.True(b.Closed);
        Assert.Contains("closed", a.ToString());
    }

    [Fact]
    public async Task Every_operation_after_Close_throws_ObjectDisposedException()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (b)
        {
            a.Close();
            Assert.Throws<ObjectDisposedException>(() => a.Send(1));
            Assert.Throws<ObjectDisposedException>(() => a.SendBytes([1]));
            Assert.Throws<ObjectDisposedException>(() => a.SendBytes(new byte[1], 0, 1));
            Assert.Throws<ObjectDisposedException>(() => a.Recv());
            Assert.Throws<ObjectDisposedException>(() => a.Recv<int>());
            Assert.Throws<ObjectDisposedException>(() => a.RecvBytes());
            Assert.Throws<ObjectDisposedException>(() => a.RecvBytesInto(new byte[1]));
            Assert.Throws<ObjectDisposedException>(() => a.Poll());
            Assert.Throws<ObjectDisposedException>(() => a.Poll(Soon));
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await a.SendAsync(1));
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await a.SendBytesAsync(new byte[1]));
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await a.RecvAsync<int>());
            await Assert.ThrowsAsync<ObjectDisposedException>(async () => await a.RecvBytesAsync());
            Assert.Throws<ObjectDisposedException>(() => mp.Connection.Wait([b, a], TimeSpan.Zero));
        }
    }

    // ---- Values that cannot cross ----

    [Fact]
    public async Task Sending_a_value_that_cannot_be_serialized_throws_and_leaves_the_connection_usable()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        using (var stream = new MemoryStream())
        {
            Assert.Throws<SerializationException>(() => a.Send(stream));
            Assert.Throws<SerializationException>(() => a.Send(new List<object> { 1, "half way", stream }));
            await Assert.ThrowsAsync<SerializationException>(async () => await a.SendAsync(new object[] { new string('x', 100_000), stream }));
            Assert.False(b.Poll(TimeSpan.Zero), "a partial message was sent");

            Assert.False(a.Closed);
            a.Send("next");
            Assert.Equal("next", Receive<string>(b));
            Assert.False(b.Poll(TimeSpan.Zero));
        }
    }
}
