using System.Net.Sockets;
using Multiprocessing.Platform;
using Multiprocessing.Serialization;

namespace Multiprocessing.Managers;

/// <summary>
/// One client thread's line to a manager's server, seen from either end: the authenticated socket connection and, for
/// a server on this machine, a shared-memory channel beside it that carries the calls (a socket round trip costs more
/// than a whole call through shared memory). The socket stays open: it carries what the channel cannot (messages over
/// <see cref="DuplexChannel.Capacity"/>, OS handles) and tells a waiting end that the other hung up.
/// </summary>
internal sealed class ManagerLine : IDisposable
{
    private readonly Func<bool> _hungUp;
    private DuplexChannel? _channel;
    private Dictionary<System.Reflection.MethodInfo, int>? _slots;
    private List<ManagerServer.MethodPlan?>? _plans;

    public ManagerLine(Connection connection)
    {
        Connection = connection;
        _hungUp = HungUp;
    }

    /// <summary>The socket connection.</summary>
    public Connection Connection { get; }

    /// <summary>Server side: the client's process id, learnt with its channel offer (0 while unknown, as over TCP).</summary>
    public int ClientPid { get; private set; }

    /// <summary>The shared-memory channel, once set up.</summary>
    public DuplexChannel? Channel => _channel;

    /// <summary>True once the line can carry nothing more.</summary>
    public bool Closed => Connection.Closed || _channel?.IsClosed == true;

    /// <summary>Whether a server at <paramref name="server"/> is on this machine and can take a shared-memory channel.</summary>
    public static bool CanShareMemory(ServerAddress server)
        => server.EndPoint is UnixDomainSocketEndPoint && OperatingSystem.IsLinux() && Serializer.Current is BinarySerializer;

    /// <summary>Client side: offers the server a channel; a server that refuses it leaves the line on the socket.</summary>
    public void OfferChannel()
    {
        DuplexChannel channel = DuplexChannel.Create();
        try
        {
            Connection.Send(new ManagerRequest { Kind = RequestKind.OpenChannel, Arguments = [new ChannelOffer(Environment.ProcessId, channel.Region)] });
            ManagerResponse response = Connection.Recv<ManagerResponse>();
            if (response.Error is not null || response.Value is not int serverPid)
            {
                channel.Dispose();
                return;
            }

            channel.WatchPeer(serverPid);
            _channel = channel;
        }
        catch
        {
            channel.Dispose();
            throw;
        }
    }

    /// <summary>Server side: takes the channel a client offered and answers with this process's id.</summary>
    public DuplexChannel AcceptChannel(ChannelOffer offer)
    {
        DuplexChannel channel = DuplexChannel.Attach(offer.Region);
        try
        {
            channel.WatchPeer(offer.Pid);
            Connection.Send(new ManagerResponse { Value = Environment.ProcessId });
        }
        catch
        {
            channel.Dispose();
            throw;
        }

        _channel = channel;
        ClientPid = offer.Pid;
        return channel;
    }

    /// <summary>Sends one message: through the channel when there is one and the message fits, else over the socket.</summary>
    public void Send<T>(T message, ObjectConverter<T> converter)
    {
        if (_channel is not { } channel)
        {
            Connection.Send(message);
            return;
        }

        bool posted;
        ObjectWriter writer = BinarySerializer.Rent();
        try
        {
            writer.CanCarryHandles = true; // to learn whether it has any: those must go over the socket
            BinarySerializer.WriteBare(writer, message, converter);
            posted = writer.Handles is not { Count: > 0 } && channel.TrySend(writer.WrittenSpan);
        }
        finally
        {
            BinarySerializer.Return(writer);
        }

        if (!posted)
        {
            channel.SendOnSocket();
            Connection.Send(message);
        }
    }

    /// <summary>Waits for one message, from the channel or (when it says so, or there is none) the socket.</summary>
    public T Receive<T>(ObjectConverter<T> converter)
    {
        if (_channel is not { } channel)
        {
            return Connection.Recv<T>();
        }

        int length = channel.Receive(_hungUp);
        return length == DuplexChannel.OnSocket ? Connection.Recv<T>() : BinarySerializer.ReadBare(channel.Received(length), converter);
    }

    /// <summary>Client side: the number the server knows <paramref name="method"/> by on this line, or 0.</summary>
    public int KnownSlot(System.Reflection.MethodInfo method) => _slots is not null && _slots.TryGetValue(method, out int slot) ? slot : 0;

    /// <summary>Client side: the number to teach the server for a method it does not know yet.</summary>
    public int NextSlot => (_slots?.Count ?? 0) + 1;

    /// <summary>Client side: the server answered a call that taught it <paramref name="slot"/>.</summary>
    public void Taught(System.Reflection.MethodInfo method, int slot)
    {
        _slots ??= [];
        _slots.TryAdd(method, slot);
    }

    /// <summary>Server side: remembers the method a call named under its slot number.</summary>
    public void LearnSlot(int slot, ManagerServer.MethodPlan plan)
    {
        _plans ??= [];
        while (_plans.Count <= slot)
        {
            _plans.Add(null);
        }

        _plans[slot] = plan;
    }

    /// <summary>Server side: the method known by <paramref name="slot"/>, or null.</summary>
    public ManagerServer.MethodPlan? SlotPlan(int slot) => _plans is not null && slot > 0 && slot < _plans.Count ? _plans[slot] : null;

    /// <summary>Wakes the other end's waiter with a closed channel; safe from any thread (unlike <see cref="Dispose"/>).</summary>
    public void Close()
    {
        _channel?.Close();
        Connection.Dispose();
    }

    /// <summary>Closes the channel and the socket; only the thread that uses the line calls it.</summary>
    public void Dispose()
    {
        _channel?.Dispose();
        Connection.Dispose();
    }

    private bool HungUp()
    {
        try
        {
            // Nothing is sent on the socket without a notice in the channel first: readable means end of stream.
            return Connection.Closed || Connection.Poll(TimeSpan.Zero);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or SocketException)
        {
            return true;
        }
    }
}

/// <summary>A client's offer of a shared-memory channel: its process id and the channel's memory (crossing as a handle).</summary>
internal sealed class ChannelOffer(int pid, SharedRegion region)
{
    public int Pid { get; } = pid;

    public SharedRegion Region { get; } = region;
}

/// <summary>A <see cref="ChannelOffer"/> crosses as the pid and the region's handle (over a Unix socket only).</summary>
internal sealed class ChannelOfferConverter : ObjectConverter<ChannelOffer>
{
    public override void Write(ObjectWriter writer, ChannelOffer value)
    {
        writer.WriteInt32(value.Pid);
        writer.WriteRegion(value.Region, typeof(ChannelOffer));
    }

    public override ChannelOffer Read(ref ObjectReader reader)
    {
        int pid = reader.ReadInt32();
        return new ChannelOffer(pid, reader.ReadRegion());
    }
}
