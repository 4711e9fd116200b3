using System.Net.Sockets;
using System.Security.Authentication;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>Defects found in review of the connections layer, kept from coming back.</summary>
/// <remarks>In the serial collection: one test counts this process's open descriptors, which parallel tests would disturb.</remarks>
[Collection(nameof(SpareChildTests))]
public sealed class ConnectionReviewTests
{
    private static int OpenDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    /// <summary>Lets objects earlier tests dropped release their descriptors now rather than during a count.</summary>
    private static void Settle()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect();
    }

    [Fact]
    public void Handles_that_came_with_a_refused_message_are_closed()
    {
        (mp.Connection spareA, mp.Connection spareB) = mp.Pipe.Create();
        using (spareA)
        using (spareB)
        {
            // Warm up whatever the first round allocates (pools, lazily opened descriptors).
            SendConnectionAndRefuse(spareA);
            Settle();
            int before = OpenDescriptors();
            for (int i = 0; i < 100; i++)
            {
                SendConnectionAndRefuse(spareA);
            }

            // A leak would add one descriptor per round (100); background work (a spare child starting) adds a few.
            // Earlier tests' objects being finalized meanwhile only close descriptors, so only growth is judged.
            Settle();
            int grown = OpenDescriptors() - before;
            Assert.True(grown <= 10, $"{grown} descriptors more after 100 refused messages");
        }
    }

    private static void SendConnectionAndRefuse(mp.Connection carried)
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.Send(carried); // the message carries a descriptor
            Assert.True(b.Poll(Bounded.Long));
            Assert.Throws<IOException>(() => b.RecvBytes(maxLength: 1)); // refused after the header (and the descriptor) arrived
        }
    }

    [Fact]
    public async Task A_unix_socket_listener_drops_a_client_that_never_answers_the_handshake()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mp-review-{Guid.NewGuid():N}.sock");
        using var listener = new mp.Listener(new UnixDomainSocketEndPoint(path), authKey: [1, 2, 3], backlog: 4)
        {
            AuthenticationTimeout = TimeSpan.FromSeconds(1),
        };
        using var silent = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await silent.ConnectAsync(new UnixDomainSocketEndPoint(path));
        Task<mp.Connection> accept = Task.Run(listener.Accept);
        await Assert.ThrowsAsync<AuthenticationException>(() => accept.WaitAsync(TimeSpan.FromSeconds(30)));
    }
}
