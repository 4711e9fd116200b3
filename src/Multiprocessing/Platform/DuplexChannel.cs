namespace Multiprocessing.Platform;

/// <summary>
/// Two one-message mailboxes in one anonymous shared region (a memfd), one per direction: the same-machine transport of
/// a manager's calls. The two ends take turns (a request, then its answer), so each mailbox holds at most one message
/// and needs no ring: the sender copies the bytes in and bumps the mailbox's sequence word; the receiver spins briefly
/// on that word, then sleeps on it with a futex.
/// </summary>
/// <remarks>
/// <para>
/// A message larger than <see cref="Capacity"/> (or one carrying OS handles) goes over the socket the channel was set
/// up on: the sender posts <see cref="OnSocket"/> in the mailbox first, and the receiver then reads the socket.
/// </para>
/// <para>
/// A peer that ends is noticed three ways: either end closing the channel sets a shared flag and wakes the other; the
/// peer's process is watched (<see cref="PeerWatch"/>), which wakes a waiter at once when it dies; and a sleeping
/// receiver looks every second whether the socket was hung up. A waiter then gets an <see cref="IOException"/>, never a hang.
/// </para>
/// <para>
/// Only the thread that owns an end sends, receives and disposes it; <see cref="Close"/> may come from any thread (it
/// only sets the flag and wakes), so the memory is never unmapped under a waiter.
/// </para>
/// </remarks>
internal sealed unsafe class DuplexChannel : IPeerDeathListener, IDisposable
{
    /// <summary>The largest message a mailbox holds; larger ones go over the socket.</summary>
    public const int Capacity = 1 << 20;

    /// <summary>The length posted for a message that follows on the socket.</summary>
    public const int OnSocket = -1;

    private const long ControlSize = 4096;
    private const long Magic = 0x314C_454E_4E41_4843; // "CHANNEL1"
    private const int OffMagic = 0, OffClosed = 8;
    private const int OffBox0 = 64, OffBox1 = 128; // each: sequence (futex word), waiter flag, length, the sender's CPU
    private static readonly TimeSpan HangUpCheck = TimeSpan.FromSeconds(1);

    private readonly SharedRegion _region;
    private readonly System.Threading.Lock _gate = new();
    private readonly byte* _outBox;
    private readonly byte* _inBox;
    private readonly byte* _outData;
    private readonly byte* _inData;
    private int _seen;
    private readonly bool _stepsAside;
    private int _besidePartner;
    private volatile bool _peerEnded;
    private bool _disposed;

    private DuplexChannel(SharedRegion region, bool creator)
    {
        _region = region;
        byte* control = region.Pointer;
        byte* box0 = control + OffBox0, box1 = control + OffBox1;
        byte* data0 = control + ControlSize, data1 = data0 + Capacity;
        _outBox = creator ? box0 : box1;
        _outData = creator ? data0 : data1;
        _inBox = creator ? box1 : box0;
        _inData = creator ? data1 : data0;
        _stepsAside = !creator; // the server's end: its thread is the library's own
    }

    /// <summary>Makes a channel; its <see cref="Region"/> goes to the other end, which calls <see cref="Attach"/>.</summary>
    public static DuplexChannel Create()
    {
        SharedRegion region = SharedMemoryBackend.Current.CreateAnonymous(ControlSize + (2L * Capacity), "mp-manager-channel");
        Volatile.Write(ref *(long*)(region.Pointer + OffMagic), Magic);
        return new DuplexChannel(region, creator: true);
    }

    /// <summary>The other end of a channel made by <see cref="Create"/> (the region is adopted).</summary>
    /// <exception cref="InvalidDataException">The region is not such a channel.</exception>
    public static DuplexChannel Attach(SharedRegion region)
    {
        if (region.Length != ControlSize + (2L * Capacity) || Volatile.Read(ref *(long*)(region.Pointer + OffMagic)) != Magic)
        {
            region.Dispose();
            throw new InvalidDataException("The shared memory received for a manager channel is not one of this library's version.");
        }

        return new DuplexChannel(region, creator: false);
    }

    /// <summary>The shared memory (crosses to the other end as its handle).</summary>
    public SharedRegion Region => _region;

    /// <summary>True once either end closed the channel or the peer's process ended.</summary>
    public bool IsClosed => _peerEnded || Volatile.Read(ref *(int*)(_region.Pointer + OffClosed)) != 0;

    private int* OutSequence => (int*)_outBox;

    private int* OutWaiting => (int*)(_outBox + 4);

    private int* InSequence => (int*)_inBox;

    private int* InWaiting => (int*)(_inBox + 4);

    /// <summary>Wakes a waiter on this end when process <paramref name="pid"/> (the other end's) ends.</summary>
    public void WatchPeer(int pid) => PeerWatch.Watch(pid, this);

    /// <summary>Posts <paramref name="message"/>; false (nothing posted) when it does not fit.</summary>
    /// <exception cref="IOException">The channel is closed.</exception>
    public bool TrySend(ReadOnlySpan<byte> message)
    {
        if (message.Length > Capacity)
        {
            return false;
        }

        ThrowIfClosed();
        message.CopyTo(new Span<byte>(_outData, message.Length));
        Post(message.Length);
        return true;
    }

    /// <summary>Tells the receiver that the next message comes over the socket.</summary>
    public void SendOnSocket()
    {
        ThrowIfClosed();
        Post(OnSocket);
    }

    private void Post(int length)
    {
        *(int*)(_outBox + 8) = length;
        *(int*)(_outBox + 12) = Thread.GetCurrentProcessorId();
        Interlocked.Increment(ref *OutSequence); // a full fence: the bytes are visible first, and the waiter flag is read after
        if (Volatile.Read(ref *OutWaiting) != 0)
        {
            Futex.Wake(OutSequence);
        }
    }

    /// <summary>
    /// Waits for the next message and returns its length (<see cref="OnSocket"/>: read it from the socket); its bytes
    /// are <see cref="Received"/> until this end sends. <paramref name="hungUp"/> is asked, while sleeping, whether the
    /// socket says the peer is gone.
    /// </summary>
    /// <exception cref="IOException">The channel was closed or the peer ended.</exception>
    public int Receive(Func<bool> hungUp)
    {
        int seen = _seen;

        // Spinning only pays while the partner runs on another CPU: on this one (the scheduler often puts a woken
        // thread beside its waker) it would have to wait for the spin to end. Each end says where it last was.
        int cpu = Thread.GetCurrentProcessorId();
        Volatile.Write(ref *(int*)(_outBox + 12), cpu);
        int budget = SpinPause.WaitBudget;
        if (Volatile.Read(ref *(int*)(_inBox + 12)) == cpu)
        {
            budget = 0;
            if (_stepsAside && ++_besidePartner >= 8)
            {
                _besidePartner = 0;
                StepAside(cpu);
            }
        }
        else
        {
            _besidePartner = 0;
        }

        for (int i = 0; i < budget; i++)
        {
            if (Volatile.Read(ref *InSequence) != seen)
            {
                return Take();
            }

            SpinPause.Once();
        }

        while (true)
        {
            Interlocked.Exchange(ref *InWaiting, 1); // a full fence: the sender's bump is seen below, or it sees the flag
            if (Volatile.Read(ref *InSequence) != seen)
            {
                Volatile.Write(ref *InWaiting, 0);
                return Take();
            }

            if (IsClosed)
            {
                Volatile.Write(ref *InWaiting, 0);
                ThrowIfClosed();
            }

            bool woken = Futex.Wait(InSequence, seen, Deadline.After(HangUpCheck));
            Volatile.Write(ref *InWaiting, 0);
            if (!woken && Volatile.Read(ref *InSequence) == seen && hungUp() && Volatile.Read(ref *InSequence) == seen)
            {
                throw new IOException("The other end of the manager channel hung up.");
            }
        }
    }

    /// <summary>
    /// Moves this thread off <paramref name="cpu"/>, where its partner runs too, by leaving it out of the thread's
    /// affinity for a moment: the OS migrates the thread at once, and the old mask is put back (the thread stays put until
    /// the scheduler moves it). Then both spin on CPUs of their own again. Only the serving end does this.
    /// </summary>
    private static void StepAside(int cpu)
    {
        if (!OperatingSystem.IsLinux() || cpu < 0 || cpu >= Linux.LibC.CpuMaskBytes * 8)
        {
            return;
        }

        byte* mask = stackalloc byte[Linux.LibC.CpuMaskBytes];
        byte* without = stackalloc byte[Linux.LibC.CpuMaskBytes];
        if (Linux.LibC.sched_getaffinity(0, Linux.LibC.CpuMaskBytes, mask) != 0)
        {
            return;
        }

        bool other = false;
        for (int i = 0; i < Linux.LibC.CpuMaskBytes; i++)
        {
            without[i] = mask[i];
        }

        without[cpu / 8] &= (byte)~(1 << (cpu % 8));
        for (int i = 0; i < Linux.LibC.CpuMaskBytes && !other; i++)
        {
            other = without[i] != 0;
        }

        if (other && Linux.LibC.sched_setaffinity(0, Linux.LibC.CpuMaskBytes, without) == 0)
        {
            Linux.LibC.sched_setaffinity(0, Linux.LibC.CpuMaskBytes, mask);
        }
    }

    private int Take()
    {
        _seen = Volatile.Read(ref *InSequence);
        return *(int*)(_inBox + 8);
    }

    /// <summary>The bytes of the message <see cref="Receive"/> reported, valid until this end sends.</summary>
    public ReadOnlySpan<byte> Received(int length) => new(_inData, length);

    private void ThrowIfClosed()
    {
        if (_peerEnded)
        {
            throw new IOException("The process at the other end of the manager channel has ended.");
        }

        if (Volatile.Read(ref *(int*)(_region.Pointer + OffClosed)) != 0)
        {
            throw new IOException("The manager channel was closed by one of its ends.");
        }
    }

    /// <summary>Marks the channel closed for both ends and wakes their waiters; safe from any thread.</summary>
    public void Close()
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            Volatile.Write(ref *(int*)(_region.Pointer + OffClosed), 1);
            WakeBoth();
        }
    }

    void IPeerDeathListener.OnPeerDied(int pid)
    {
        _peerEnded = true;
        lock (_gate)
        {
            if (!_disposed)
            {
                WakeBoth();
            }
        }
    }

    private void WakeBoth()
    {
        Futex.WakeAll(InSequence);
        Futex.WakeAll(OutSequence);
    }

    /// <summary>Closes the channel and unmaps it; only the thread that owns this end calls it.</summary>
    public void Dispose()
    {
        Close();
        PeerWatch.Forget(this);
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }

            _disposed = true;
            _region.Dispose();
        }
    }
}
