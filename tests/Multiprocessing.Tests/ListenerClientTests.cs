using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public sealed class ListenerClientTests : IDisposable
{
    private static readonly byte[] Key = Encoding.ASCII.GetBytes("secret-key");
    private static readonly byte[] OtherKey = Encoding.ASCII.GetBytes("other-key");

    private readonly ScratchDirectory _scratch = new();

    public void Dispose() => _scratch.Dispose();

    // ---- addresses ------------------------------------------------------------------------------------------------

    [Fact]
    public void Unix_path_socket_is_owner_only_round_trips_and_is_removed_on_dispose()
    {
        string path = _scratch.File("listener.sock");
        var listener = new mp.Listener(new UnixDomainSocketEndPoint(path), Key);
        using (listener)
        {
            Assert.True(File.Exists(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
            Assert.Equal(path, listener.Address.ToString());

            (mp.Connection client, mp.Connection server) = Connect(listener, Key);
            using (client)
            using (server)
            {
                RoundTrip(client, server);
                Assert.IsType<UnixDomainSocketEndPoint>(listener.LastAccepted);
            }
        }

        Assert.False(File.Exists(path), "the socket file must be removed on Dispose");
        listener.Dispose(); // idempotent
    }

    [Fact]
    public void Unix_path_without_a_key_round_trips()
    {
        using var listener = new mp.Listener(new UnixDomainSocketEndPoint(_scratch.File("plain.sock")));
        Assert.False(listener.Authenticates);
        (mp.Connection client, mp.Connection server) = Connect(listener, null);
        using (client)
        using (server)
        {
            RoundTrip(client, server);
        }
    }

    [Fact]
    public void Abstract_name_round_trips_and_leaves_no_file()
    {
        string name = "\0mp-test-" + Guid.NewGuid().ToString("N");
        using var listener = new mp.Listener(new UnixDomainSocketEndPoint(name), Key);
        Assert.Equal(new UnixDomainSocketEndPoint(name), listener.Address);
        (mp.Connection client, mp.Connection server) = Connect(listener, Key);
        using (client)
        using (server)
        {
            RoundTrip(client, server);
        }

        Assert.Empty(Directory.GetFiles(_scratch.Path));
    }

    [Fact]
    public void A_socket_file_left_by_a_child_that_never_disposed_its_listener_is_removed_when_it_exits()
    {
        string path = _scratch.File("child.sock");
        string marker = _scratch.File("listening");
        var child = new mp.Process(() =>
        {
            _ = new mp.Listener(new UnixDomainSocketEndPoint(path), Key); // never disposed
            File.WriteAllText(marker, File.Exists(path) ? "yes" : "no");
        });
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal("yes", File.ReadAllText(marker));
        Assert.False(File.Exists(path), "the child's socket file must be removed when it exits");
    }

    [Fact]
    public void Tcp_on_loopback_port_zero_reports_the_chosen_port_and_the_peer()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key);
        var bound = Assert.IsType<IPEndPoint>(listener.Address);
        Assert.Equal(IPAddress.Loopback, bound.Address);
        Assert.NotEqual(0, bound.Port);
        Assert.Null(listener.LastAccepted);

        (mp.Connection client, mp.Connection server) = Connect(listener, Key);
        using (client)
        using (server)
        {
            RoundTrip(client, server);
            Assert.Equal(client.Socket.LocalEndPoint, listener.LastAccepted);
        }
    }

    [Fact]
    public void Tcp_on_ipv6_loopback_and_by_host_name()
    {
        if (Socket.OSSupportsIPv6)
        {
            using var v6 = new mp.Listener(new IPEndPoint(IPAddress.IPv6Loopback, 0));
            (mp.Connection a, mp.Connection b) = Connect(v6, null);
            using (a)
            using (b)
            {
                RoundTrip(a, b);
            }
        }

        using var byName = new mp.Listener(new DnsEndPoint("localhost", 0), Key);
        var bound = Assert.IsType<IPEndPoint>(byName.Address);
        Assert.True(IPAddress.IsLoopback(bound.Address));
        Task<mp.Connection> accepting = Within.Start(byName.Accept);
        using mp.Connection client = Within.Call(() => mp.Client.Connect(new DnsEndPoint("localhost", bound.Port), Key));
        using mp.Connection server = Within.Await(accepting);
        RoundTrip(client, server);
    }

    [Fact]
    public async Task Async_accept_and_connect_authenticate_and_round_trip()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key);
        Task<mp.Connection> accepting = listener.AcceptAsync();
        using mp.Connection client = await mp.Client.ConnectAsync(listener.Address, Key).WaitAsync(Bounded.Long);
        using mp.Connection server = await accepting.WaitAsync(Bounded.Long);
        await client.SendAsync(new Dictionary<string, int> { ["a"] = 1 });
        Assert.Equal(1, (await server.RecvAsync<Dictionary<string, int>>().AsTask().WaitAsync(Bounded.Long))["a"]);
        await server.SendBytesAsync(new byte[] { 1, 2, 3 });
        Assert.Equal(new byte[] { 1, 2, 3 }, await client.RecvBytesAsync().AsTask().WaitAsync(Bounded.Long));
    }

    // ---- errors ---------------------------------------------------------------------------------------------------

    [Fact]
    public void A_wrong_key_is_rejected_on_both_sides_and_the_listener_keeps_accepting()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key);
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        Assert.Throws<AuthenticationException>(() => Within.Call(() => mp.Client.Connect(listener.Address, OtherKey)));
        Assert.Throws<AuthenticationException>(() => Within.Await(accepting));

        (mp.Connection client, mp.Connection server) = Connect(listener, Key);
        using (client)
        using (server)
        {
            RoundTrip(client, server);
        }
    }

    [Fact]
    public async Task A_wrong_key_is_rejected_on_both_sides_asynchronously()
    {
        using var listener = new mp.Listener(new UnixDomainSocketEndPoint(_scratch.File("async.sock")), Key);
        Task<mp.Connection> accepting = listener.AcceptAsync();
        await Assert.ThrowsAsync<AuthenticationException>(() => mp.Client.ConnectAsync(listener.Address, OtherKey).WaitAsync(Bounded.Long));
        await Assert.ThrowsAsync<AuthenticationException>(() => accepting.WaitAsync(Bounded.Long));
    }

    [Fact]
    public void A_client_without_a_key_cannot_get_past_a_listener_with_one()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key);
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using mp.Connection client = Within.Call(() => mp.Client.Connect(listener.Address));
        client.Send("let me in");
        Assert.Throws<AuthenticationException>(() => Within.Await(accepting));
    }

    [Fact]
    public void Binding_an_address_in_use_names_the_address()
    {
        using var tcp = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0));
        IOException tcpError = Assert.Throws<IOException>(() => new mp.Listener(tcp.Address));
        Assert.Contains(tcp.Address.ToString()!, tcpError.Message, StringComparison.Ordinal);

        string path = _scratch.File("taken.sock");
        using var unix = new mp.Listener(new UnixDomainSocketEndPoint(path));
        IOException unixError = Assert.Throws<IOException>(() => new mp.Listener(new UnixDomainSocketEndPoint(path)));
        Assert.Contains(path, unixError.Message, StringComparison.Ordinal);
        Assert.True(File.Exists(path), "a listener that failed to bind must not remove the file of the one that did");

        string name = "\0mp-taken-" + Guid.NewGuid().ToString("N");
        using var abstractListener = new mp.Listener(new UnixDomainSocketEndPoint(name));
        IOException abstractError = Assert.Throws<IOException>(() => new mp.Listener(new UnixDomainSocketEndPoint(name)));
        Assert.Contains(name[1..], abstractError.Message, StringComparison.Ordinal);

        // The listener that holds the address still works.
        (mp.Connection a, mp.Connection b) = Connect(unix, null);
        using (a)
        using (b)
        {
            RoundTrip(a, b);
        }
    }

    [Fact]
    public void A_non_loopback_tcp_listener_needs_a_key_unless_told_otherwise()
    {
        var anyAddress = new IPEndPoint(IPAddress.Any, 0);
        ArgumentException error = Assert.Throws<ArgumentException>(() => new mp.Listener(anyAddress));
        Assert.Contains("auth key", error.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new mp.Listener(new IPEndPoint(IPAddress.IPv6Any, 0)));

        using (new mp.Listener(anyAddress, Key))
        {
        }

        using (new mp.Listener(anyAddress, null, 16, allowUnauthenticatedRemote: true))
        {
        }

        // Loopback in every spelling is fine without a key.
        using (new mp.Listener(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0)))
        {
        }
    }

    [Fact]
    public void Bad_arguments_are_refused()
    {
        Assert.Throws<ArgumentException>(() => new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), []));
        Assert.Throws<ArgumentException>(() => mp.Client.Connect(new IPEndPoint(IPAddress.Loopback, 1), []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), null, -1));
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => listener.AuthenticationTimeout = TimeSpan.Zero);
    }

    [Fact]
    public void Connecting_to_nothing_names_the_address()
    {
        string path = _scratch.File("nobody.sock");
        IOException error = Assert.Throws<IOException>(() => Within.Call(() => mp.Client.Connect(new UnixDomainSocketEndPoint(path), Key)));
        Assert.Contains(path, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AcceptAsync_can_be_cancelled_and_the_listener_stays_usable()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key);
        using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(100)))
        {
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listener.AcceptAsync(cts.Token).WaitAsync(Bounded.Long));
        }

        using (var cancelled = new CancellationTokenSource())
        {
            await cancelled.CancelAsync();
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => listener.AcceptAsync(cancelled.Token).WaitAsync(Bounded.Long));
        }

        Task<mp.Connection> accepting = listener.AcceptAsync();
        using mp.Connection client = await mp.Client.ConnectAsync(listener.Address, Key).WaitAsync(Bounded.Long);
        using mp.Connection server = await accepting.WaitAsync(Bounded.Long);
        client.Send(42);
        Assert.Equal(42, Within.Call(server.Recv<int>));
    }

    [Fact]
    public void Closing_the_listener_ends_a_blocked_accept()
    {
        var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0));
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        Thread.Sleep(100); // let it block (the test passes either way)
        listener.Close();
        Assert.Throws<ObjectDisposedException>(() => Within.Await(accepting));
        Assert.Throws<ObjectDisposedException>(listener.Accept);
    }

    // ---- hostile peers --------------------------------------------------------------------------------------------

    public static TheoryData<string, byte[]> HostileAnswers() => new()
    {
        { "truncated header", [0, 0] },
        { "negative length", [0xFF, 0xFF, 0xFF, 0xFE] },
        { "absurd length, no data", [0x7F, 0xFF, 0xFF, 0xFF] },
        { "absurd 8-byte length", [0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
        { "length over the 256-byte limit", Frame(new byte[257]) },
        { "garbage of a legacy length", Frame(new byte[20]) },
        { "garbage of a legacy digest's length", Frame(new byte[16]) },
        { "garbage without a digest prefix", Frame(Encoding.ASCII.GetBytes("hello, this is not an answer at all")) },
        { "unsupported digest", Frame([.. "{sha512}"u8, .. new byte[64]]) },
        { "empty digest name", Frame([.. "{}"u8, .. new byte[32]]) },
        { "unclosed digest prefix", Frame([.. "{sha256"u8, .. new byte[32]]) },
        { "right digest, wrong length", Frame([.. "{sha256}"u8, .. new byte[31]]) },
        { "right digest, wrong MAC", Frame([.. "{sha256}"u8, .. new byte[32]]) },
        { "empty answer", Frame([]) },
    };

    [Theory]
    [MemberData(nameof(HostileAnswers))]
    public void A_hostile_client_fails_the_accept_cleanly(string what, byte[] bytes)
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key) { AuthenticationTimeout = TimeSpan.FromSeconds(20) };
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using (var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            raw.Connect(listener.Address);
            raw.Send(bytes);
            raw.Shutdown(SocketShutdown.Send);
            Exception error = Assert.ThrowsAny<Exception>(() => Within.Await(accepting));
            Assert.True(error is AuthenticationException or IOException, $"{what}: {error}");
        }

        // The listener carries on.
        (mp.Connection client, mp.Connection server) = Connect(listener, Key);
        using (client)
        using (server)
        {
            RoundTrip(client, server);
        }
    }

    [Fact]
    public void A_silent_client_is_dropped_after_the_authentication_timeout()
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0), Key) { AuthenticationTimeout = TimeSpan.FromMilliseconds(300) };
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        raw.Connect(listener.Address);
        AuthenticationException error = Assert.Throws<AuthenticationException>(() => Within.Call(listener.Accept));
        Assert.IsType<TimeoutException>(error.InnerException);

        // A client that sends half a header and stalls is dropped too.
        using var dribbler = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        dribbler.Connect(listener.Address);
        dribbler.Send(new byte[] { 0, 0 });
        Assert.Throws<AuthenticationException>(() => Within.Call(listener.Accept));
    }

    [Fact]
    public async Task A_silent_listener_lets_ConnectAsync_be_cancelled()
    {
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        raw.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        raw.Listen();
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => mp.Client.ConnectAsync(raw.LocalEndPoint!, Key, cts.Token).WaitAsync(Bounded.Long));
    }

    public static TheoryData<string, byte[]> HostileChallenges() => new()
    {
        { "closed at once", [] },
        { "truncated header", [0, 0, 0] },
        { "negative length", [0x80, 0, 0, 0] },
        { "absurd length, no data", [0x7F, 0xFF, 0xFF, 0xFF] },
        { "not a challenge", Frame(Encoding.ASCII.GetBytes("#WELCOME#")) },
        { "challenge too short", Frame([.. "#CHALLENGE#"u8, 1, 2, 3, 4, 5]) },
        { "unsupported digest", Frame([.. "#CHALLENGE#{sha1}"u8, .. new byte[40]]) },
        { "no digest prefix", Frame([.. "#CHALLENGE#"u8, .. new byte[30]]) },
        { "over the 256-byte limit", Frame([.. "#CHALLENGE#{sha256}"u8, .. new byte[300]]) },
    };

    [Theory]
    [MemberData(nameof(HostileChallenges))]
    public void A_hostile_listener_fails_the_connect_cleanly(string what, byte[] bytes)
    {
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        raw.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        raw.Listen();
        Task<bool> serving = Within.Start(() =>
        {
            using Socket peer = raw.Accept();
            peer.Send(bytes);
            peer.Shutdown(SocketShutdown.Send);
            // Wait for the client to give up, so it never sees a reset instead of our bytes.
            peer.ReceiveTimeout = (int)Bounded.Long.TotalMilliseconds;
            byte[] sink = new byte[1024];
            try
            {
                while (peer.Receive(sink) > 0)
                {
                }
            }
            catch (SocketException)
            {
                // The client closed with our bytes unread (a reset): it gave up, which is what we waited for.
            }

            return true;
        });
        Exception error = Assert.ThrowsAny<Exception>(() => Within.Call(() => mp.Client.Connect(raw.LocalEndPoint!, Key)));
        Assert.True(error is AuthenticationException or IOException, $"{what}: {error}");
        Within.Await(serving);
    }

    [Fact]
    public void A_legacy_challenge_gets_a_raw_md5_answer_and_a_modern_one_a_prefixed_answer()
    {
        byte[] legacy = RandomNumberGenerator.GetBytes(20);
#pragma warning disable CA5351 // the legacy protocol is HMAC-MD5
        Assert.Equal(HMACMD5.HashData(Key, legacy), mp.Handshake.CreateAnswer(Key, legacy));
#pragma warning restore CA5351
        byte[] modern = [.. "{sha384}"u8, .. RandomNumberGenerator.GetBytes(40)];
        Assert.Equal([.. "{sha384}"u8, .. HMACSHA384.HashData(Key, modern)], mp.Handshake.CreateAnswer(Key, modern));
        Assert.Null(mp.Handshake.Verify(Key, modern, mp.Handshake.CreateAnswer(Key, modern)));
        Assert.NotNull(mp.Handshake.Verify(OtherKey, modern, mp.Handshake.CreateAnswer(Key, modern)));
    }

    [Theory]
    [InlineData("md5")]
    [InlineData("sha256")]
    [InlineData("sha384")]
    [InlineData("sha3_256")]
    [InlineData("sha3_384")]
    public void Answers_match_pythons_hmac_for_every_allowed_digest(string digest)
    {
        if (digest.StartsWith("sha3", StringComparison.Ordinal) && !HMACSHA3_256.IsSupported)
        {
            return; // this OpenSSL has no SHA-3; the handshake then refuses such a challenge
        }

        byte[] message = [.. Encoding.ASCII.GetBytes("{" + digest + "}"), .. RandomNumberGenerator.GetBytes(40)];
        byte[] answer = mp.Handshake.CreateAnswer(Key, message);
        (int exit, string output, string error) = Bounded.Command(
            "python3", "-c", "import hmac, sys; print(hmac.new(bytes.fromhex(sys.argv[1]), bytes.fromhex(sys.argv[2]), sys.argv[3]).hexdigest())",
            Convert.ToHexString(Key), Convert.ToHexString(message), digest);
        Assert.True(exit == 0, error);
        Assert.Equal("{" + digest + "}" + output.Trim(), Encoding.ASCII.GetString(answer, 0, digest.Length + 2) + Convert.ToHexStringLower(answer.AsSpan(digest.Length + 2)));
        Assert.Null(mp.Handshake.Verify(Key, message, answer));
    }

    public static TheoryData<string, byte[]> HostileMessages() => new()
    {
        { "truncated header", [0, 0] },
        { "negative length", [0xFF, 0xFF, 0xFF, 0xFE] },
        { "absurd length, no data", [0x7F, 0xFF, 0xFF, 0xFF] },
        { "absurd 8-byte length, no data", [0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xC7] },
        { "huge 8-byte length", [0xFF, 0xFF, 0xFF, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF] },
        { "a message cut short", [0, 0, 1, 0, 1, 2, 3] },
    };

    [Theory]
    [MemberData(nameof(HostileMessages))]
    public void A_hostile_peer_after_connecting_ends_that_connection_without_a_big_allocation(string what, byte[] bytes)
    {
        using var listener = new mp.Listener(new IPEndPoint(IPAddress.Loopback, 0));
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using var raw = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        raw.Connect(listener.Address);
        using mp.Connection server = Within.Await(accepting);
        raw.Send(bytes);
        raw.Shutdown(SocketShutdown.Send);
        (Exception? error, long allocated) = Within.Call(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                server.RecvBytes();
                return ((Exception?)null, 0L);
            }
            catch (Exception ex)
            {
                return (ex, GC.GetAllocatedBytesForCurrentThread() - before);
            }
        });
        Assert.True(error is IOException, $"{what}: {error}"); // EndOfStreamException is an IOException
        Assert.True(allocated < 4 << 20, $"{what}: allocated {allocated} bytes");
    }

    [Fact]
    public void A_hostile_object_message_ends_the_connection_too()
    {
        using var listener = new mp.Listener(new UnixDomainSocketEndPoint(_scratch.File("objects.sock")));
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using var raw = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        raw.Connect(listener.Address);
        using mp.Connection server = Within.Await(accepting);
        raw.Send(new byte[] { 0x7F, 0xFF, 0xFF, 0xFF, 1, 2, 3 });
        raw.Shutdown(SocketShutdown.Send);
        Assert.ThrowsAny<IOException>(() => Within.Call(server.Recv));
    }

    // ---- interoperability with CPython ----------------------------------------------------------------------------

    /// <summary>A CPython peer: a Listener or Client with an auth key that echoes every message, printing its length and SHA-256.</summary>
    private const string PythonEcho = """
        import hashlib, sys
        from multiprocessing import AuthenticationError
        from multiprocessing.connection import Client, Listener
        role, family, key, where = sys.argv[1:5]
        key = key.encode()
        address = ('127.0.0.1', int(where)) if family == 'tcp' else where

        def echo(c):
            while True:
                try:
                    m = c.recv_bytes()
                except EOFError:
                    return
                print('GOT', len(m), hashlib.sha256(m).hexdigest(), flush=True)
                c.send_bytes(m)

        try:
            if role == 'server':
                with Listener(address, authkey=key) as l:
                    a = l.address
                    print('READY', a[1] if family == 'tcp' else a, flush=True)
                    with l.accept() as c:
                        echo(c)
            else:
                with Client(address, authkey=key) as c:
                    print('CONNECTED', flush=True)
                    echo(c)
        except AuthenticationError as e:
            print('AUTHFAIL', e, flush=True)
            sys.exit(3)
        print('DONE', flush=True)
        """;

    public static TheoryData<string, string> PythonPeers()
    {
        var data = new TheoryData<string, string>();
        foreach (string python in PythonPeer.Interpreters())
        {
            data.Add(python, "tcp");
            data.Add(python, "unix");
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(PythonPeers))]
    public void Python_listener_and_our_client_exchange_bytes(string python, string family)
    {
        string path = _scratch.File("py-server.sock");
        using PythonPeer peer = PythonPeer.Start(python, PythonEcho, "server", family, "secret-key", family == "tcp" ? "0" : path);
        string where = peer.Expect("READY ");
        EndPoint address = family == "tcp" ? new IPEndPoint(IPAddress.Loopback, int.Parse(where, System.Globalization.CultureInfo.InvariantCulture)) : new UnixDomainSocketEndPoint(where);
        using (mp.Connection connection = Within.Call(() => mp.Client.Connect(address, Key)))
        {
            EchoThrough(connection, peer);
        }

        (int exit, List<string> rest) = peer.WaitForExit();
        Assert.True(exit == 0, $"python exited {exit}: {string.Join(" | ", rest)} {peer.Error}");
        Assert.Contains("DONE", rest);
    }

    [Theory]
    [MemberData(nameof(PythonPeers))]
    public void Python_client_and_our_listener_exchange_bytes(string python, string family)
    {
        EndPoint bind = family == "tcp" ? new IPEndPoint(IPAddress.Loopback, 0) : new UnixDomainSocketEndPoint(_scratch.File("our-server.sock"));
        using var listener = new mp.Listener(bind, Key);
        string where = listener.Address is IPEndPoint ip ? ip.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : listener.Address.ToString()!;
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using PythonPeer peer = PythonPeer.Start(python, PythonEcho, "client", family, "secret-key", where);
        using (mp.Connection connection = Within.Await(accepting))
        {
            peer.Expect("CONNECTED");
            EchoThrough(connection, peer);
        }

        (int exit, List<string> rest) = peer.WaitForExit();
        Assert.True(exit == 0, $"python exited {exit}: {string.Join(" | ", rest)} {peer.Error}");
        Assert.Contains("DONE", rest);
    }

    [Theory]
    [MemberData(nameof(PythonPeers))]
    public void A_wrong_key_is_rejected_by_and_from_python(string python, string family)
    {
        // Python listens, we connect with another key.
        string path = _scratch.File("py-wrong.sock");
        using (PythonPeer peer = PythonPeer.Start(python, PythonEcho, "server", family, "other-key", family == "tcp" ? "0" : path))
        {
            string where = peer.Expect("READY ");
            EndPoint address = family == "tcp" ? new IPEndPoint(IPAddress.Loopback, int.Parse(where, System.Globalization.CultureInfo.InvariantCulture)) : new UnixDomainSocketEndPoint(where);
            Assert.Throws<AuthenticationException>(() => Within.Call(() => mp.Client.Connect(address, Key)));
            peer.Expect("AUTHFAIL");
            Assert.Equal(3, peer.WaitForExit().ExitCode);
        }

        // We listen, Python connects with another key.
        EndPoint bind = family == "tcp" ? new IPEndPoint(IPAddress.Loopback, 0) : new UnixDomainSocketEndPoint(_scratch.File("our-wrong.sock"));
        using var listener = new mp.Listener(bind, Key);
        string ours = listener.Address is IPEndPoint ip ? ip.Port.ToString(System.Globalization.CultureInfo.InvariantCulture) : listener.Address.ToString()!;
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        using (PythonPeer peer = PythonPeer.Start(python, PythonEcho, "client", family, "other-key", ours))
        {
            Assert.Throws<AuthenticationException>(() => Within.Await(accepting));
            peer.Expect("AUTHFAIL");
            Assert.Equal(3, peer.WaitForExit().ExitCode);
        }
    }

    // ---- helpers --------------------------------------------------------------------------------------------------

    /// <summary>Sends an empty message, a short one and 16 MiB through a Python echo peer and checks what comes back and what Python saw.</summary>
    private static void EchoThrough(mp.Connection connection, PythonPeer peer)
    {
        byte[] big = new byte[16 << 20];
        new Random(7).NextBytes(big);
        foreach (byte[] message in new[] { Array.Empty<byte>(), "hello from .NET"u8.ToArray(), big })
        {
            Within.Call(() => connection.SendBytes(message));
            byte[] back = Within.Call(() => connection.RecvBytes());
            Assert.Equal(message.Length, back.Length);
            Assert.True(message.AsSpan().SequenceEqual(back), "the echo differs");
            Assert.Equal($"{message.Length} {Convert.ToHexStringLower(SHA256.HashData(message))}", peer.Expect("GOT "));
        }
    }

    private static (mp.Connection Client, mp.Connection Server) Connect(mp.Listener listener, byte[]? key)
    {
        Task<mp.Connection> accepting = Within.Start(listener.Accept);
        mp.Connection client = Within.Call(() => mp.Client.Connect(listener.Address, key));
        return (client, Within.Await(accepting));
    }

    private static void RoundTrip(mp.Connection client, mp.Connection server)
    {
        client.Send(new List<string> { "one", "two" });
        client.SendBytes([]);
        client.SendBytes(new byte[100_000]);
        Assert.Equal(["one", "two"], Within.Call(server.Recv<List<string>>));
        Assert.Empty(Within.Call(() => server.RecvBytes()));
        Assert.Equal(100_000, Within.Call(() => server.RecvBytes()).Length);
        server.Send((42, "answer"));
        Assert.Equal((42, "answer"), Within.Call(client.Recv<(int, string)>));
    }

    private static byte[] Frame(byte[] payload)
    {
        byte[] framed = new byte[4 + payload.Length];
        BinaryPrimitives.WriteInt32BigEndian(framed, payload.Length);
        payload.CopyTo(framed, 4);
        return framed;
    }
}
