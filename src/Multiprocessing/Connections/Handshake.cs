using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;

namespace Multiprocessing;

/// <summary>
/// CPython's challenge–response authentication of a new connection (<c>deliver_challenge</c> and
/// <c>answer_challenge</c> in <c>multiprocessing/connection.py</c>), byte for byte, so Python peers interoperate.
/// </summary>
/// <remarks>
/// <para>
/// The accepting side delivers a challenge, <c>#CHALLENGE#{sha256}</c> and 40 random bytes; the other side answers
/// <c>{sha256}</c> and the HMAC-SHA256, under the shared key, of everything after <c>#CHALLENGE#</c> (the prefix
/// included, so a peer cannot downgrade the digest); the verdict is <c>#WELCOME#</c> or <c>#FAILURE#</c>. Then the
/// roles swap, so each side knows the other holds the key.
/// </para>
/// <para>
/// Legacy peers (CPython 3.11 and older) are understood: their challenge is 20 random bytes without a prefix and
/// expects a raw 16-byte HMAC-MD5; their answer to a prefixed challenge is a raw 16-byte HMAC-MD5 of the whole
/// challenge, which is accepted as CPython 3.12 accepts it. Every handshake message is read with a 256-byte limit.
/// </para>
/// </remarks>
internal static class Handshake
{
    /// <summary>How long a peer has, by default, to complete the whole exchange.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Handshake messages longer than this are refused unread, as in CPython.</summary>
    private const int MaxMessageLength = 256;

    /// <summary>Random bytes in a challenge we deliver (CPython 3.12's <c>MESSAGE_LENGTH</c>).</summary>
    private const int ChallengeLength = 40;

    /// <summary>The length of a legacy, MD5-only challenge, and the shortest challenge answered.</summary>
    private const int LegacyChallengeLength = 20;

    /// <summary>The length of a raw HMAC-MD5: an unprefixed answer of this length is a legacy one.</summary>
    private const int Md5Length = 16;

    /// <summary>The longest digest name allowed ("sha3_256").</summary>
    private const int MaxDigestNameLength = 8;

    private const string DefaultDigest = "sha256";

    private static ReadOnlySpan<byte> ChallengeTag => "#CHALLENGE#"u8;

    private static ReadOnlySpan<byte> Welcome => "#WELCOME#"u8;

    private static ReadOnlySpan<byte> Failure => "#FAILURE#"u8;

    /// <summary>The accepting side: challenges the peer, then answers its challenge.</summary>
    public static void Accepting(Connection connection, byte[] key, TimeSpan timeout) =>
        RunAsync(connection, key, accepting: true, timeout, sync: true, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>The connecting side: answers the peer's challenge, then challenges it.</summary>
    public static void Connecting(Connection connection, byte[] key, TimeSpan timeout) =>
        RunAsync(connection, key, accepting: false, timeout, sync: true, CancellationToken.None).GetAwaiter().GetResult();

    /// <summary>As <see cref="Accepting"/>, without blocking a thread.</summary>
    public static Task AcceptingAsync(Connection connection, byte[] key, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(connection, key, accepting: true, timeout, sync: false, cancellationToken);

    /// <summary>As <see cref="Connecting"/>, without blocking a thread.</summary>
    public static Task ConnectingAsync(Connection connection, byte[] key, TimeSpan timeout, CancellationToken cancellationToken) =>
        RunAsync(connection, key, accepting: false, timeout, sync: false, cancellationToken);

    /// <summary>
    /// Runs the exchange; on any failure the connection is closed. The deadline closes the connection, which wakes a
    /// blocked read in either mode. With <paramref name="sync"/> every step completes synchronously.
    /// </summary>
    private static async Task RunAsync(Connection connection, byte[] key, bool accepting, TimeSpan timeout, bool sync, CancellationToken cancellationToken)
    {
        using var deadline = new CancellationTokenSource();
        CancellationTokenRegistration closeOnDeadline = deadline.Token.UnsafeRegister(static state => ((Connection)state!).Dispose(), connection);
        if (timeout != Timeout.InfiniteTimeSpan)
        {
            deadline.CancelAfter(timeout);
        }

        try
        {
            if (accepting)
            {
                await DeliverChallengeAsync(connection, key, sync, cancellationToken).ConfigureAwait(false);
                await AnswerChallengeAsync(connection, key, sync, cancellationToken).ConfigureAwait(false);
            }
            else
            {
                await AnswerChallengeAsync(connection, key, sync, cancellationToken).ConfigureAwait(false);
                await DeliverChallengeAsync(connection, key, sync, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (Exception ex)
        {
            closeOnDeadline.Dispose();
            connection.Dispose();
            if (deadline.IsCancellationRequested)
            {
                throw TimedOut(timeout, ex);
            }

            if (ex is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                throw new OperationCanceledException("The authentication handshake was cancelled; the connection was closed.", ex, cancellationToken);
            }

            throw;
        }

        // Waits for a deadline callback already running: after this, a closed connection means the deadline won.
        closeOnDeadline.Dispose();
        if (connection.Closed)
        {
            throw TimedOut(timeout, null);
        }
    }

    private static AuthenticationException TimedOut(TimeSpan timeout, Exception? inner) =>
        new($"The peer did not complete the authentication handshake within {timeout.TotalSeconds:0.###} s; the connection was closed.", new TimeoutException("The authentication handshake timed out.", inner));

    /// <summary>CPython's <c>deliver_challenge</c>: sends a challenge, checks the answer, tells the peer the verdict.</summary>
    private static async Task DeliverChallengeAsync(Connection connection, byte[] key, bool sync, CancellationToken cancellationToken)
    {
        // message = "{sha256}" + 40 random bytes; the peer's MAC covers all of it, the prefix included.
        byte[] prefix = Encoding.ASCII.GetBytes("{" + DefaultDigest + "}");
        byte[] challenge = new byte[ChallengeTag.Length + prefix.Length + ChallengeLength];
        ChallengeTag.CopyTo(challenge);
        prefix.CopyTo(challenge, ChallengeTag.Length);
        RandomNumberGenerator.Fill(challenge.AsSpan(ChallengeTag.Length + prefix.Length));
        await SendAsync(connection, challenge, sync, cancellationToken).ConfigureAwait(false);

        byte[] answer = await ReceiveAsync(connection, sync, cancellationToken).ConfigureAwait(false);
        string? error = Verify(key, challenge.AsSpan(ChallengeTag.Length), answer);
        if (error is not null)
        {
            try
            {
                await SendAsync(connection, Failure.ToArray(), sync, cancellationToken).ConfigureAwait(false);
            }
            catch (IOException)
            {
                // The peer is gone already; the verdict is ours to raise either way.
            }

            throw new AuthenticationException(error);
        }

        await SendAsync(connection, Welcome.ToArray(), sync, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>CPython's <c>answer_challenge</c>: answers the peer's challenge and expects its welcome.</summary>
    private static async Task AnswerChallengeAsync(Connection connection, byte[] key, bool sync, CancellationToken cancellationToken)
    {
        byte[] challenge = await ReceiveAsync(connection, sync, cancellationToken).ConfigureAwait(false);
        if (!challenge.AsSpan().StartsWith(ChallengeTag))
        {
            throw new AuthenticationException("Protocol error: expected an authentication challenge from the peer (does it use an auth key?).");
        }

        ReadOnlySpan<byte> message = challenge.AsSpan(ChallengeTag.Length);
        if (message.Length < LegacyChallengeLength)
        {
            throw new AuthenticationException($"The peer's authentication challenge is too short ({message.Length} bytes).");
        }

        await SendAsync(connection, CreateAnswer(key, message), sync, cancellationToken).ConfigureAwait(false);
        byte[] verdict = await ReceiveAsync(connection, sync, cancellationToken).ConfigureAwait(false);
        if (!verdict.AsSpan().SequenceEqual(Welcome))
        {
            throw new AuthenticationException("The peer rejected our answer to its authentication challenge: the auth keys differ.");
        }
    }

    /// <summary>CPython's <c>_create_response</c>: the MAC of the whole challenge message, in the digest it names.</summary>
    internal static byte[] CreateAnswer(byte[] key, ReadOnlySpan<byte> message)
    {
        string digest = DigestNameAndPayload(message, out _)
            ?? throw new AuthenticationException("The peer's authentication challenge names no supported digest (or has an unsupported length).");
        if (digest.Length == 0)
        {
            // A legacy challenge: a raw HMAC-MD5, unless MD5 is unavailable (FIPS), where CPython falls back to SHA-256.
            if (Mac("md5", key, message) is { } legacy)
            {
                return legacy;
            }

            digest = DefaultDigest;
        }

        byte[] mac = Mac(digest, key, message)
            ?? throw new AuthenticationException($"The digest {digest} the peer asks for is not available on this system.");
        byte[] prefix = Encoding.ASCII.GetBytes("{" + digest + "}");
        return [.. prefix, .. mac];
    }

    /// <summary>CPython's <c>_verify_challenge</c>: null when <paramref name="answer"/> is right, else why not.</summary>
    internal static string? Verify(byte[] key, ReadOnlySpan<byte> message, ReadOnlySpan<byte> answer)
    {
        if (DigestNameAndPayload(answer, out int payloadStart) is not { } digest)
        {
            return "The peer's answer to the authentication challenge names no supported digest (or has an unsupported length).";
        }

        if (digest.Length == 0)
        {
            digest = "md5"; // an unprefixed 16-byte answer from a legacy peer
        }

        if (Mac(digest, key, message) is not { } expected)
        {
            return $"The digest {digest} the peer answered with is not available on this system.";
        }

        ReadOnlySpan<byte> received = answer[payloadStart..];
        if (expected.Length != received.Length || !CryptographicOperations.FixedTimeEquals(expected, received))
        {
            return "The peer's answer to the authentication challenge was wrong: the auth keys differ.";
        }

        return null;
    }

    /// <summary>
    /// CPython's <c>_get_digest_name_and_payload</c>: "" for a legacy message (16 or 20 bytes, no prefix), the digest
    /// named by a <c>{name}</c> prefix (the payload starting after it), or null when neither.
    /// </summary>
    private static string? DigestNameAndPayload(ReadOnlySpan<byte> message, out int payloadStart)
    {
        payloadStart = 0;
        if (message.Length is LegacyChallengeLength or Md5Length)
        {
            return "";
        }

        if (message.Length == 0 || message[0] != (byte)'{')
        {
            return null;
        }

        // As CPython: the closing brace within the first MaxDigestNameLength + 2 bytes.
        int curly = message[1..Math.Min(message.Length, MaxDigestNameLength + 2)].IndexOf((byte)'}') + 1;
        if (curly <= 0)
        {
            return null;
        }

        string? digest = Encoding.ASCII.GetString(message[1..curly]) switch
        {
            "md5" => "md5",
            "sha256" => "sha256",
            "sha384" => "sha384",
            "sha3_256" => "sha3_256",
            "sha3_384" => "sha3_384",
            _ => null,
        };
        payloadStart = curly + 1;
        return digest;
    }

    /// <summary>HMAC of <paramref name="data"/> under <paramref name="key"/> with an allowed digest; null if unavailable here.</summary>
    private static byte[]? Mac(string digest, byte[] key, ReadOnlySpan<byte> data)
    {
        try
        {
            return digest switch
            {
#pragma warning disable CA5351 // MD5 only where a legacy CPython peer requires it, exactly as CPython does.
                "md5" => HMACMD5.HashData(key, data),
#pragma warning restore CA5351
                "sha256" => HMACSHA256.HashData(key, data),
                "sha384" => HMACSHA384.HashData(key, data),
                "sha3_256" when HMACSHA3_256.IsSupported => HMACSHA3_256.HashData(key, data),
                "sha3_384" when HMACSHA3_384.IsSupported => HMACSHA3_384.HashData(key, data),
                _ => null,
            };
        }
        catch (Exception ex) when (ex is CryptographicException or PlatformNotSupportedException)
        {
            return null; // e.g. MD5 disabled by a FIPS policy
        }
    }

    private static async ValueTask SendAsync(Connection connection, byte[] data, bool sync, CancellationToken cancellationToken)
    {
        if (sync)
        {
            connection.SendBytes(data);
        }
        else
        {
            await connection.SendBytesAsync(data, cancellationToken).ConfigureAwait(false);
        }
    }

    private static async ValueTask<byte[]> ReceiveAsync(Connection connection, bool sync, CancellationToken cancellationToken) =>
        sync
            ? connection.RecvBytes(MaxMessageLength)
            : await connection.RecvBytesAsync(MaxMessageLength, cancellationToken).ConfigureAwait(false);
}
