using System.Runtime.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Connections handed to children and sent through other connections (the seed's Pipe examples).</summary>
public sealed class ConnectionCrossingTests
{
    private static T Receive<T>(mp.Connection connection)
    {
        Assert.True(connection.Poll(Bounded.Long), "no message arrived");
        return connection.Recv<T>();
    }

    [Fact]
    public void A_child_sends_through_a_connection_passed_as_an_argument()
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using (parentEnd)
        using (childEnd)
        {
            var p = new mp.Process<mp.Connection>(static conn =>
            {
                conn.Send("Hello World");
                conn.Close();
            }, childEnd);
            p.Start();
            Assert.Equal("Hello World", Receive<string>(parentEnd));
            Bounded.Join(p);
            Assert.Equal(0, p.ExitCode);
        }
    }

    [Fact]
    public void A_captured_connection_works_both_ways_in_the_child()
    {
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        using (parentEnd)
        using (childEnd)
        {
            var p = new mp.Process(() =>
            {
                int n = childEnd.Recv<int>();
                childEnd.Send(n * 2);
            });
            p.Start();
            parentEnd.Send(21);
            Assert.Equal(42, Receive<int>(parentEnd));
            Bounded.Join(p);
        }
    }

    [Fact]
    public void A_connection_can_be_sent_through_another_connection()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        (mp.Connection c, mp.Connection d) = mp.Pipe.Create();
        using (a)
        using (b)
        using (c)
        using (d)
        {
            a.Send(c);
            using mp.Connection received = Receive<mp.Connection>(b);
            received.Send("through the passed end");
            Assert.Equal("through the passed end", Receive<string>(d));
        }
    }

    [Fact]
    public void A_child_receives_a_connection_sent_after_it_started()
    {
        (mp.Connection control, mp.Connection childControl) = mp.Pipe.Create();
        (mp.Connection data, mp.Connection childData) = mp.Pipe.Create();
        using (control)
        using (childControl)
        using (data)
        using (childData)
        {
            var p = new mp.Process<mp.Connection>(static conn =>
            {
                using mp.Connection extra = conn.Recv<mp.Connection>();
                extra.Send("via a connection received later");
            }, childControl);
            p.Start();
            control.Send(childData);
            Assert.Equal("via a connection received later", Receive<string>(data));
            Bounded.Join(p);
            Assert.Equal(0, p.ExitCode);
        }
    }

    [Fact]
    public void A_child_gets_only_the_end_its_lambda_reads_so_it_sees_end_of_stream()
    {
        // Both ends live in one scope, so C#'s closure holds both; were the parent's end copied into the child, the
        // child would hold the channel open itself and wait for ever (Python's "close the unused end" trap).
        using var scratch = new ScratchDirectory();
        string path = scratch.File("eof");
        (mp.Connection parentEnd, mp.Connection childEnd) = mp.Pipe.Create();
        Action sibling = () => parentEnd.Send(0); // a sibling lambda: now the shared closure holds parentEnd too
        var p = new mp.Process(() =>
        {
            try
            {
                childEnd.Recv<int>();
            }
            catch (EndOfStreamException)
            {
                File.WriteAllText(path, "end of stream");
            }
        });
        p.Start();
        childEnd.Dispose();
        parentEnd.Dispose();
        bool ended = p.Join(TimeSpan.FromSeconds(10));
        if (!ended)
        {
            p.Kill();
            Bounded.Join(p);
        }

        Assert.True(ended, "the child never saw end of stream");
        Assert.Equal("end of stream", File.ReadAllText(path));
        Assert.NotNull(sibling);
    }

    [Fact]
    public void Several_connections_sent_back_to_back_each_arrive_with_their_own_message()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        var pipes = Enumerable.Range(0, 5).Select(_ => mp.Pipe.Create()).ToList();
        try
        {
            a.Send("first, without handles");
            foreach ((mp.Connection first, mp.Connection _) in pipes)
            {
                a.Send(first); // queued back to back: a read may reach into the next message
            }

            a.Send("last, without handles");
            Assert.Equal("first, without handles", Receive<string>(b));
            for (int i = 0; i < pipes.Count; i++)
            {
                using mp.Connection received = Receive<mp.Connection>(b);
                received.Send(i);
                Assert.Equal(i, Receive<int>(pipes[i].Item2));
            }

            Assert.Equal("last, without handles", Receive<string>(b));
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

    [Fact]
    public void A_connection_cannot_be_serialized_into_plain_bytes()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            var ex = Assert.Throws<SerializationException>(() => Serialization.BinarySerializer.Default.Serialize(a));
            Assert.Contains("OS handle", ex.Message, StringComparison.Ordinal);
        }
    }
}
