using System.Security.Authentication;
using System.Text;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>
/// Listener and Client over named pipes (Python's <c>AF_PIPE</c>). On Linux .NET carries named pipes over Unix
/// sockets, so this runs the same code path a Windows named pipe takes above the OS.
/// </summary>
public sealed class NamedPipeTests
{
    private static readonly byte[] Key = Encoding.ASCII.GetBytes("pipe-key");
    private static readonly byte[] OtherKey = Encoding.ASCII.GetBytes("other-key");

    [Fact]
    public void Addresses_parse_as_python_writes_them()
    {
        var bare = new mp.NamedPipeEndPoint("jobs");
        Assert.Equal("jobs", bare.PipeName);
        Assert.Equal(".", bare.ServerName);
        Assert.True(bare.IsLocal);
        Assert.Equal(@"\\.\pipe\jobs", bare.ToString());

        var full = new mp.NamedPipeEndPoint(@"\\.\pipe\jobs");
        Assert.Equal(bare, full);
        Assert.Equal(bare.GetHashCode(), full.GetHashCode());

        var remote = new mp.NamedPipeEndPoint(@"\\host\PIPE\a\b");
        Assert.Equal("host", remote.ServerName);
        Assert.Equal(@"a\b", remote.PipeName);
        Assert.False(remote.IsLocal);

        Assert.Throws<ArgumentException>(() => new mp.NamedPipeEndPoint(""));
        Assert.Throws<ArgumentException>(() => new mp.NamedPipeEndPoint(@"\\.\pipe\"));
        Assert.Throws<ArgumentException>(() => new mp.NamedPipeEndPoint(@"\\.\nopipe"));
        Assert.Throws<ArgumentException>(() => new mp.NamedPipeEndPoint("a\0b"));
        Assert.Throws<ArgumentNullException>(() => new mp.NamedPipeEndPoint(null!));
        var refused = Assert.Throws<ArgumentException>(() => new mp.Listener(remote, Key));
        Assert.Contains(@"\\host\pipe\a\b", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_child_connects_authenticates_and_exchanges_messages_both_ways()
    {
        var address = UniqueAddress();
        using var listener = new mp.Listener(address, Key);
        Assert.Equal(address, listener.Address);
        var child = new mp.Process<string>(static name =>
        {
            using mp.Connection c = mp.Client.Connect(new mp.NamedPipeEndPoint(name), Encoding.ASCII.GetBytes("pipe-key"));
            var (n, text) = c.Recv<(int, string)>();
            c.Send((n + 1, text.ToUpperInvariant()));
            c.SendBytes(new byte[16 << 20]);
            c.SendBytes([]);
        }, address.ToString());
        child.Start();
        using mp.Connection server = Within.Call(listener.Accept);
        Assert.Null(listener.LastAccepted);
        server.Send((41, "hello"));
        Assert.Equal((42, "HELLO"), Within.Call(server.Recv<(int, string)>));
        Assert.Equal(16 << 20, Within.Call(() => server.RecvBytes()).Length);
        Assert.Empty(Within.Call(() => server.RecvBytes()));
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Throws<EndOfStreamException>(() => Within.Call(() => server.Recv<int>()));
    }

    [Fact]
    public async Task Async_accept_and_connect_and_wait_on_the_connections()
    {
        var address = UniqueAddress();
        using var listener = new mp.Listener(address, Key);
        Task<mp.Connection> accepting = listener.AcceptAsync();
        using mp.Connection client = await mp.Client.ConnectAsync(address, Key).WaitAsync(Bounded.Long);
        using mp.Connection server = await accepting.WaitAsync(Bounded.Long);

        Assert.False(server.Poll(TimeSpan.Zero));
        Assert.Empty(mp.Connection.Wait([server, client], TimeSpan.Zero));
        await client.SendAsync("ping").AsTask().WaitAsync(Bounded.Long);
        Assert.True(server.Poll(Bounded.Long));
        Assert.Equal([server], mp.Connection.Wait([server, client], Bounded.Long));
        Assert.Equal("ping", await server.RecvAsync<string>().AsTask().WaitAsync(Bounded.Long));

        // A second client while the first is still connected: the listener keeps an instance waiting.
        Task<mp.Connection> second = listener.AcceptAsync();
        using mp.Connection client2 = await mp.Client.ConnectAsync(address, Key).WaitAsync(Bounded.Long);
        using mp.Connection server2 = await second.WaitAsync(Bounded.Long);
        client2.Send(2);
        client.Send(1);
        Assert.Equal(2, Within.Call(server2.Recv<int>));
        Assert.Equal(1, Within.Call(server.Recv<int>));
    }

    [Fact]
    public void A_connection_over_a_pipe_can_be_handed_to_a_child()
    {
        var address = UniqueAddress();
        using var listener = new mp.Listener(address);
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using mp.Connection client = Within.Call(() => mp.Client.Connect(address));
        using mp.Connection server = Within.Await(accepting);
        var child = new mp.Process<mp.Connection>(static c => c.Send(c.Recv<string>() + " back"), server);
        child.Start();
        client.Send("there and");
        Assert.Equal("there and back", Within.Call(client.Recv<string>));
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
    }

    [Fact]
    public void A_wrong_key_is_rejected_on_both_sides_and_the_listener_keeps_accepting()
    {
        var address = UniqueAddress();
        using var listener = new mp.Listener(address, Key);
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        Assert.Throws<AuthenticationException>(() => Within.Call(() => mp.Client.Connect(address, OtherKey)));
        Assert.Throws<AuthenticationException>(() => Within.Await(accepting));

        accepting = Within.Start(listener.Accept);
        using mp.Connection client = Within.Call(() => mp.Client.Connect(address, Key));
        using mp.Connection server = Within.Await(accepting);
        client.Send("after");
        Assert.Equal("after", Within.Call(server.Recv<string>));
    }

    [Fact]
    public void A_name_in_use_is_refused_and_free_again_after_dispose()
    {
        var address = UniqueAddress();
        var first = new mp.Listener(address);
        var inUse = Assert.Throws<IOException>(() => new mp.Listener(address));
        Assert.Contains(address.ToString(), inUse.Message, StringComparison.Ordinal);
        first.Dispose();
        first.Dispose(); // idempotent

        using var again = new mp.Listener(address);
        Task<mp.Connection> accepting = Within.Start(again.Accept);
        using mp.Connection client = Within.Call(() => mp.Client.Connect(address));
        using mp.Connection server = Within.Await(accepting);
        server.Send(7);
        Assert.Equal(7, Within.Call(client.Recv<int>));
    }

    [Fact]
    public void Connecting_to_no_listener_names_the_address()
    {
        var address = UniqueAddress();
        var failed = Assert.Throws<IOException>(() => Within.Call(() => mp.Client.Connect(address)));
        Assert.Contains(address.ToString(), failed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Closing_the_listener_ends_a_blocked_accept()
    {
        var listener = new mp.Listener(UniqueAddress());
        Task<mp.Connection> accepting = Within.Start(listener.Accept); // blocked or about to be: either way it must end
        listener.Close();
        Assert.Throws<ObjectDisposedException>(() => Within.Await(accepting));
        Assert.Throws<ObjectDisposedException>(listener.Accept);
    }

    [Fact]
    public async Task AcceptAsync_can_be_cancelled_and_the_listener_stays_usable()
    {
        var address = UniqueAddress();
        using var listener = new mp.Listener(address, Key);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listener.AcceptAsync(cts.Token).WaitAsync(Bounded.Long));
        }

        Task<mp.Connection> accepting = listener.AcceptAsync();
        using mp.Connection client = await mp.Client.ConnectAsync(address, Key).WaitAsync(Bounded.Long);
        using mp.Connection server = await accepting.WaitAsync(Bounded.Long);
        client.Send(42);
        Assert.Equal(42, Within.Call(server.Recv<int>));
    }

    [Fact]
    public void A_remote_manager_serves_over_a_named_pipe_to_a_child()
    {
        byte[] key = "abracadabra"u8.ToArray();
        mp.NamedPipeEndPoint address = UniqueAddress();
        using var server = new mp.Manager(address, key);
        var jobs = new Counter();
        server.Register<ICounter>("jobs", () => jobs);
        server.Start();
        Assert.Equal(address, server.Address);

        var child = new mp.Process(() =>
        {
            using mp.Manager remote = mp.Manager.Connect(address, key);
            ICounter shared = remote.Get<ICounter>("jobs");
            for (int i = 0; i < 5; i++)
            {
                shared.Increment();
            }
        });
        child.Start();
        Bounded.Join(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(5, jobs.Value);
        Assert.Throws<AuthenticationException>(() => mp.Manager.Connect(address, "wrong"u8.ToArray()));
    }

    private static mp.NamedPipeEndPoint UniqueAddress() => new("mp-test-" + Guid.NewGuid().ToString("N"));
}
