using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform;

/// <summary>
/// A multi-producer, multi-consumer queue of byte messages in one anonymous shared region (a memfd): the engine under
/// <c>Queue&lt;T&gt;</c>, <c>SimpleQueue&lt;T&gt;</c> and <c>JoinableQueue&lt;T&gt;</c>.
/// </summary>
/// <remarks>
/// <para>
/// The messages live in a byte ring addressed by 64-bit positions that only grow; a position's byte is at
/// <c>position mod RingSize</c>. The ring is 16 GiB of <em>sparse</em> memory: the OS allocates a page only when it is
/// first written. When a producer has used the first <see cref="HotSize"/> bytes of a lap and finds the queue empty,
/// it wraps back to the ring's start, so the same few (cache-warm) pages are reused; otherwise messages go on into the
/// cold part, and its pages are given back to the OS (a punched hole) once consumed.
/// So an unbounded queue grows with its backlog (memory permitting) without any new OS object, and a message of any
/// size up to 2 GiB is one contiguous copy.
/// </para>
/// <para>
/// A record is a 16-byte header (a stamp, the payload length, a process id) and the payload, 8-byte aligned. The stamp
/// is the record's position plus its state in the low 3 bits, so a reader can never mistake an old lap's bytes for a
/// current record. Producers take a tiny claim lock (no syscall while uncontended) only to place the record and publish
/// the new tail; they write the payload after releasing it and commit with one store. Consumers claim with a CAS on
/// the head and, after reading, mark the record freed; whoever finds the oldest record freed advances the reclaim
/// position (under a try-lock, so giving pages back can never race a producer reusing them).
/// </para>
/// <para>
/// Crashes: a record claimed by a producer that dies before committing is skipped (never shown half-written); a claim
/// lock or reclaim lock held by a dead process is taken over; a record being read by a consumer that dies is reclaimed
/// (that item is lost with its reader, as in Python). Deaths are noticed through <see cref="ProcessWatch"/>, which wakes
/// the waiters. Limits: a process killed in the window of a couple of stores between claiming and recording its
/// claim can leave a count off by one or, for a consumer, hold back the reclaiming of memory.
/// </para>
/// </remarks>
[System.Diagnostics.CodeAnalysis.SuppressMessage("Design", "CA1001", Justification = "Close() disposes the peer watch; the ring's owner (a queue) is the disposable.")]
internal sealed unsafe class MessageRing
{
    /// <summary>The control block before the ring.</summary>
    public const long ControlSize = 4096;

    /// <summary>The ring's virtual size (sparse: only written pages use memory).</summary>
    public const long DefaultRingSize = 1L << 34;

    /// <summary>The part of each lap that is reused while consumers keep up, and never given back.</summary>
    public const long DefaultHotSize = 8L << 20;

    /// <summary>Bytes before each payload.</summary>
    public const int RecordHeader = 16;

    /// <summary>The largest payload.</summary>
    public const int MaxMessage = 0x7FFF_FFC7 - 64;

    private const long Magic = 0x3145_5545_5551_504D; // "MPQUEUE1"

    private const long KindMask = 7;
    private const long Writing = 1, Committed = 2, Pad = 3, Aborted = 4, Reading = 5, Freed = 6;
    private const int CountedFlag = 0x4000_0000, PidMask = 0x3FFF_FFFF, Contended = 0x4000_0000;
    private const int ClosedBit = 1 << 30;
    private const int SpinLimit = 200;
    private const long ReclaimLag = 256 << 10;

    // Control block: fields written by different parties sit on different cache lines.
    private const int OffMagic = 0, OffRingSize = 8, OffMaxItems = 16, OffHotSize = 24;
    private const int OffTail = 64, OffItemsPut = 72, OffColdHigh = 80;
    private const int OffClaimLock = 128, OffLockSeq = 132;
    private const int OffHead = 192, OffItemsTaken = 200;
    private const int OffReclaim = 256, OffReclaimLock = 264, OffReclaimRequested = 268;
    private const int OffDataSeq = 320, OffDataWaiters = 324;
    private const int OffSpaceSeq = 384, OffSpaceWaiters = 388;
    private const int OffUnfinished = 448, OffJoinSeq = 456, OffJoinWaiters = 460;
    private const int OffCompleted = 512;

    private readonly SharedRegion _region;
    private readonly long RingSize; // instance, not const: tests use small rings to lap them quickly
    private readonly long HotSize;
    private readonly long Granule; // cold memory is given back in pieces of this size
    private readonly byte* _control;
    private readonly byte* _data;
    private readonly int _pid = Environment.ProcessId;
    private readonly PeerWatch _peers;
    private readonly string _owner;
    private int _users;
    private int _released;

    private MessageRing(SharedRegion region, string owner)
    {
        _region = region;
        _control = region.Pointer;
        _data = _control + ControlSize;
        _owner = owner;
        _peers = new PeerWatch(this);
        MaxItems = *(int*)(_control + OffMaxItems);
        RingSize = *(long*)(_control + OffRingSize);
        HotSize = *(long*)(_control + OffHotSize);
        Granule = Math.Min(1L << 20, RingSize / 16);
    }

    /// <summary>Creates a ring; <paramref name="maxItems"/> 0 is unbounded.</summary>
    public static MessageRing Create(int maxItems, string owner, long ringSize = DefaultRingSize, long hotSize = DefaultHotSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxItems);
        if (ringSize < 1 << 16 || (ringSize & (ringSize - 1)) != 0 || hotSize <= 0 || hotSize > ringSize / 2 || hotSize % 4096 != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(ringSize), "the ring size must be a power of two of at least 64 KiB, the hot part a multiple of 4 KiB up to half of it");
        }

        SharedRegion region = SharedMemoryBackend.Current.CreateAnonymous(ControlSize + ringSize, "mp-queue");
        byte* control = region.Pointer;
        *(long*)(control + OffRingSize) = ringSize;
        *(long*)(control + OffHotSize) = hotSize;
        *(int*)(control + OffMaxItems) = maxItems;
        Volatile.Write(ref *(long*)(control + OffMagic), Magic);
        return new MessageRing(region, owner);
    }

    /// <summary>Wraps a region received from another process.</summary>
    public static MessageRing Attach(SharedRegion region, string owner)
    {
        if (region.Length < ControlSize || Volatile.Read(ref *(long*)region.Pointer) != Magic
            || region.Length != ControlSize + *(long*)(region.Pointer + OffRingSize))
        {
            region.Dispose();
            throw new InvalidDataException($"the shared memory received for a {owner} is not a queue of this library's version");
        }

        return new MessageRing(region, owner);
    }

    /// <summary>
    /// Tests only: called with 1 while holding the claim lock, 2 after claiming before the payload is written, 3 after
    /// taking before the payload is read — the places where a killed process must not hurt the others.
    /// </summary>
    internal static Action<MessageRing, int>? TestHook;

    /// <summary>Bytes of memory the OS has allocated to the region now (its pages that were written and not given back).</summary>
    public long AllocatedBytes => Linux.LibC.AllocatedBytes((int)_region.Handle.DangerousGetHandle());

    /// <summary>The region (crosses to other processes as its handle).</summary>
    public SharedRegion Region => _region;

    /// <summary>The bound on items, 0 for none.</summary>
    public int MaxItems { get; }

    /// <summary>Approximate number of items in the queue.</summary>
    public long Count => Math.Max(0, Volatile.Read(ref ItemsPut) - Volatile.Read(ref ItemsTaken));

    /// <summary>True once this process's handle was closed.</summary>
    public bool IsClosed => (Volatile.Read(ref _users) & ClosedBit) != 0;

    /// <summary>True once a writer called <see cref="Complete"/> (the channel view's completion, shared by all processes).</summary>
    public bool IsCompleted => Volatile.Read(ref *(int*)(_control + OffCompleted)) != 0;

    /// <summary>Bytes of the ring holding messages not yet reclaimed.</summary>
    public long BytesInUse => Volatile.Read(ref Tail) - Volatile.Read(ref ReclaimPosition);

    private ref long Tail => ref *(long*)(_control + OffTail);

    private ref long ItemsPut => ref *(long*)(_control + OffItemsPut);

    private ref long ColdHigh => ref *(long*)(_control + OffColdHigh);

    private ref long Head => ref *(long*)(_control + OffHead);

    private ref long ItemsTaken => ref *(long*)(_control + OffItemsTaken);

    private ref long ReclaimPosition => ref *(long*)(_control + OffReclaim);

    private ref long Unfinished => ref *(long*)(_control + OffUnfinished);

    private int* ClaimLock => (int*)(_control + OffClaimLock);

    private int* LockSeq => (int*)(_control + OffLockSeq);

    private int* ReclaimLock => (int*)(_control + OffReclaimLock);

    private int* ReclaimRequested => (int*)(_control + OffReclaimRequested);

    private int* DataSeq => (int*)(_control + OffDataSeq);

    private int* DataWaiters => (int*)(_control + OffDataWaiters);

    private int* SpaceSeq => (int*)(_control + OffSpaceSeq);

    private int* SpaceWaiters => (int*)(_control + OffSpaceWaiters);

    private int* JoinSeq => (int*)(_control + OffJoinSeq);

    private int* JoinWaiters => (int*)(_control + OffJoinWaiters);

    /// <summary>The payload of the record at <paramref name="position"/>.</summary>
    public byte* Payload(long position) => At(position) + RecordHeader;

    private byte* At(long position) => _data + (position & (RingSize - 1));

    /// <summary>The ring's virtual size.</summary>
    public long Size => RingSize;

    private static long RecordSize(int length) => (RecordHeader + (long)length + 7) & ~7L;

    // ---- lifetime in this process -------------------------------------------------------------------------------

    /// <summary>Marks a use of the mapping; <see cref="ObjectDisposedException"/> once closed. Pair with <see cref="Exit"/>.</summary>
    public void Enter()
    {
        if ((Interlocked.Increment(ref _users) & ClosedBit) != 0)
        {
            Exit();
            throw new ObjectDisposedException(_owner);
        }
    }

    /// <summary>Ends a use; the last one after <see cref="Close"/> unmaps.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _users) == ClosedBit)
        {
            ReleaseMapping();
        }
    }

    private bool TryEnter()
    {
        if ((Interlocked.Increment(ref _users) & ClosedBit) != 0)
        {
            Exit();
            return false;
        }

        return true;
    }

    /// <summary>Closes this process's handle: blocked calls here end with <see cref="ObjectDisposedException"/>; the data stays for others.</summary>
    public void Close()
    {
        Interlocked.Increment(ref _users);
        int before = Interlocked.Or(ref _users, ClosedBit);
        if ((before & ClosedBit) == 0)
        {
            _peers.Dispose();
            BumpAll();
        }

        Exit();
    }

    private void ReleaseMapping()
    {
        if (Interlocked.Exchange(ref _released, 1) == 0)
        {
            _region.Dispose();
        }
    }

    private void ThrowIfClosed() => ObjectDisposedException.ThrowIf(IsClosed, _owner);

    /// <summary>Wakes every waiter on every word (a peer died, this handle closed, a wait was cancelled): all look again.</summary>
    private void BumpAll()
    {
        Bump(DataSeq);
        Bump(SpaceSeq);
        Bump(LockSeq);
        Bump(JoinSeq);

        static void Bump(int* word)
        {
            Interlocked.Increment(ref *word);
            Futex.WakeAll(word);
        }
    }

    private void OnPeerDied()
    {
        if (TryEnter())
        {
            try
            {
                BumpAll();
                Reclaim(); // a dead reader may have held the oldest record
            }
            finally
            {
                Exit();
            }
        }
    }

    private void OnCancel()
    {
        if (TryEnter())
        {
            try
            {
                BumpAll();
            }
            finally
            {
                Exit();
            }
        }
    }

    private CancellationTokenRegistration WakeOnCancel(CancellationToken cancellationToken)
        => cancellationToken.CanBeCanceled
            ? cancellationToken.UnsafeRegister(static state => ((MessageRing)state!).OnCancel(), this)
            : default;

    // ---- producers ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Claims a record for <paramref name="length"/> payload bytes, waiting for room until <paramref name="deadline"/>
    /// (false then). Write the payload at <see cref="Payload"/>, then <see cref="Commit"/>.
    /// </summary>
    public bool TryClaim(int length, Deadline deadline, CancellationToken cancellationToken, out long position)
    {
        Span<int> lengths = stackalloc int[1];
        lengths[0] = length;
        Span<long> positions = stackalloc long[1];
        bool claimed = TryClaimMany(lengths, positions, deadline, cancellationToken) == 1;
        position = positions[0];
        return claimed;
    }

    /// <summary>
    /// Claims records for as many of <paramref name="lengths"/> as fit at once (at least one, waiting for room until
    /// <paramref name="deadline"/>); returns how many (0 on timeout).
    /// </summary>
    public int TryClaimMany(ReadOnlySpan<int> lengths, Span<long> positions, Deadline deadline, CancellationToken cancellationToken)
    {
        foreach (int length in lengths)
        {
            if ((uint)length > MaxMessage || RecordSize(length) > RingSize / 2)
            {
                throw new ArgumentOutOfRangeException(nameof(lengths), length, $"A queue message can be at most {Math.Min(MaxMessage, RingSize / 2 - RecordHeader)} bytes.");
            }
        }

        CancellationTokenRegistration registration = default;
        try
        {
            while (true)
            {
                AcquireClaimLock();
                TestHook?.Invoke(this, 1);
                int claimed = 0;
                while (claimed < lengths.Length)
                {
                    long size = RecordSize(lengths[claimed]);
                    long tail = Tail;
                    if (!TryPlace(tail, size, out long position) && !(ReclaimLagging() && TryPlace(tail, size, out position)))
                    {
                        break;
                    }

                    if (position == tail && (tail & (RingSize - 1)) + size > HotSize && ReclaimLagging() && TryPlace(tail, size, out long hot))
                    {
                        position = hot; // the lazy reclaim position held us out of the hot part: back to it
                    }

                    System.Diagnostics.Debug.Assert(position + size - Volatile.Read(ref ReclaimPosition) <= RingSize, "a new record must not overlap memory the reclaim position has not passed");
                    byte* at = At(position);
                    *(int*)(at + 8) = lengths[claimed];
                    *(int*)(at + 12) = _pid;
                    Volatile.Write(ref *(long*)at, position | Writing);
                    if (position != tail)
                    {
                        Volatile.Write(ref *(long*)At(tail), tail | Pad);
                    }

                    long end = position + size;
                    if ((position & (RingSize - 1)) + size > HotSize && end > ColdHigh)
                    {
                        ColdHigh = end;
                    }

                    Volatile.Write(ref Tail, end);
                    if (position != tail)
                    {
                        // If every record before the pad is taken, skip the pad now, as the next consumer would: the
                        // reclaim position can then pass it before this lap's records come round to where it lies.
                        _ = Interlocked.CompareExchange(ref Head, position, tail);
                    }

                    Volatile.Write(ref ItemsPut, ItemsPut + 1);
                    positions[claimed++] = position;
                }

                ReleaseClaimLock();
                if (claimed > 0)
                {
                    TestHook?.Invoke(this, 2);
                    return claimed;
                }

                if (registration == default)
                {
                    registration = WakeOnCancel(cancellationToken);
                }

                if (!WaitForSpace(RecordSize(lengths[0]), deadline, cancellationToken))
                {
                    return 0;
                }
            }
        }
        finally
        {
            registration.Dispose();
        }
    }

    /// <summary>Where a record of <paramref name="size"/> bytes goes if the tail is <paramref name="tail"/>; false if there is no room now.</summary>
    private bool TryPlace(long tail, long size, out long position)
    {
        position = tail;
        if (MaxItems > 0 && Volatile.Read(ref ItemsPut) - Volatile.Read(ref ItemsTaken) >= MaxItems)
        {
            return false;
        }

        long reclaim = Volatile.Read(ref ReclaimPosition);
        long offset = tail & (RingSize - 1);
        long lap = tail - offset;
        if (offset + size <= HotSize && tail + size - reclaim <= RingSize)
        {
            return true; // in the hot part
        }

        // Back to the start of the ring (a pad record covers the rest of this lap): to reuse the hot part, only once
        // nothing of this lap is in use any more, so the next lap has the whole ring to itself. Wrapping while records
        // remained left room only up to the oldest of them, and a Put on an unbounded queue then blocked as soon as a
        // backlog of a few MiB outgrew it. At the very end of a lap the wrap is forced, and needs only the room for this
        // record. Either way the record must end before the pad, whose header the reclaim walk still has to read.
        if (offset > 0 && (offset + size > RingSize ? reclaim >= lap + size : size <= HotSize && size <= offset && reclaim >= tail))
        {
            position = lap + RingSize;
            return true;
        }

        return offset + size <= RingSize && tail + size - reclaim <= RingSize; // on into the cold part
    }

    /// <summary>Moves the reclaim position on if it lags (reclaiming is lazy); true if it moved.</summary>
    private bool ReclaimLagging()
    {
        long before = Volatile.Read(ref ReclaimPosition);
        if (before == Volatile.Read(ref Head))
        {
            return false;
        }

        Reclaim(claimLockHeld: true);
        return Volatile.Read(ref ReclaimPosition) != before;
    }

    private bool WaitForSpace(long size, Deadline deadline, CancellationToken cancellationToken)
    {
        for (int spin = 0; spin < SpinLimit / 4 && !deadline.HasPassed; spin++)
        {
            Thread.SpinWait(30);
            if (TryPlace(Volatile.Read(ref Tail), size, out _))
            {
                return true;
            }
        }

        int seen = Volatile.Read(ref *SpaceSeq);
        Interlocked.Increment(ref *SpaceWaiters);
        try
        {
            Reclaim();
            if (TryPlace(Volatile.Read(ref Tail), size, out _))
            {
                return true;
            }

            ThrowIfClosed();
            cancellationToken.ThrowIfCancellationRequested();
            return Futex.Wait(SpaceSeq, seen, deadline);
        }
        finally
        {
            Interlocked.Decrement(ref *SpaceWaiters);
        }
    }

    /// <summary>Makes a claimed record visible to consumers; <paramref name="wake"/> false defers the wake to a later commit of a batch.</summary>
    public void Commit(long position, bool wake = true)
    {
        Interlocked.Exchange(ref *(long*)At(position), position | Committed);
        if (wake)
        {
            WakeConsumer();
        }
    }

    /// <summary>Wakes one sleeping consumer if there is any.</summary>
    public void WakeConsumer()
    {
        if (Volatile.Read(ref *DataWaiters) > 0)
        {
            Interlocked.Increment(ref *DataSeq);
            Futex.Wake(DataSeq, 1);
        }
    }

    /// <summary>Withdraws a claimed record (consumers skip it).</summary>
    public void Abort(long position)
    {
        Interlocked.Exchange(ref *(long*)At(position), position | Aborted);
        WakeConsumer();
    }

    private void AcquireClaimLock()
    {
        if (Interlocked.CompareExchange(ref *ClaimLock, _pid, 0) != 0)
        {
            AcquireClaimLockSlow();
        }
    }

    private void AcquireClaimLockSlow()
    {
        for (int spin = 0; spin < SpinLimit; spin++)
        {
            if (spin < 20)
            {
                Thread.SpinWait(8);
            }
            else
            {
                Thread.Yield(); // the holder may be descheduled mid-claim (more processes than cores)
            }

            if (Volatile.Read(ref *ClaimLock) == 0 && Interlocked.CompareExchange(ref *ClaimLock, _pid, 0) == 0)
            {
                return;
            }
        }

        while (true)
        {
            int seen = Volatile.Read(ref *LockSeq);
            int current = Volatile.Read(ref *ClaimLock);
            if (current == 0)
            {
                if (Interlocked.CompareExchange(ref *ClaimLock, _pid | Contended, 0) == 0)
                {
                    return;
                }

                continue;
            }

            int holder = current & PidMask;
            if (_peers.HasDied(holder))
            {
                if (Interlocked.CompareExchange(ref *ClaimLock, _pid | Contended, current) == current)
                {
                    return; // the holder died mid-claim: what it published is consistent, what it did not is overwritten
                }

                continue;
            }

            if ((current & Contended) == 0 && Interlocked.CompareExchange(ref *ClaimLock, current | Contended, current) != current)
            {
                continue;
            }

            _peers.Watch(holder);
            if (Volatile.Read(ref *ClaimLock) == (current | Contended) && !_peers.HasDied(holder))
            {
                _ = Futex.Wait(LockSeq, seen, Deadline.Infinite);
            }
        }
    }

    private void ReleaseClaimLock()
    {
        if ((Interlocked.Exchange(ref *ClaimLock, 0) & Contended) != 0)
        {
            Interlocked.Increment(ref *LockSeq);
            Futex.Wake(LockSeq, 1);
        }
    }

    // ---- consumers ------------------------------------------------------------------------------------------------

    /// <summary>
    /// Takes the oldest message, waiting until <paramref name="deadline"/> (false then). Read its payload, then
    /// <see cref="Release"/> it.
    /// </summary>
    public bool TryTake(Deadline deadline, CancellationToken cancellationToken, out long position, out int length)
    {
        Span<long> positions = stackalloc long[1];
        Span<int> lengths = stackalloc int[1];
        bool taken = TryTakeMany(positions, lengths, deadline, cancellationToken) == 1;
        position = positions[0];
        length = lengths[0];
        return taken;
    }

    /// <summary>
    /// Takes up to <paramref name="positions"/>.Length messages that are ready (waiting until <paramref name="deadline"/>
    /// for the first); returns how many (0 on timeout). Release each.
    /// </summary>
    /// <remarks>
    /// With <paramref name="peek"/>, returns 1 as soon as a message is ready, without taking it. With
    /// <paramref name="untilCompleted"/>, returns 0 when the queue is empty and <see cref="Complete"/> was called.
    /// </remarks>
    public int TryTakeMany(Span<long> positions, Span<int> lengths, Deadline deadline, CancellationToken cancellationToken,
        bool peek = false, bool untilCompleted = false)
    {
        CancellationTokenRegistration registration = default;
        int spins = 0;
        bool slept = false;
        try
        {
            while (true)
            {
                long head = Volatile.Read(ref Head);
                long tail = Volatile.Read(ref Tail);
                if (head == tail)
                {
                    if (untilCompleted && IsCompleted)
                    {
                        return 0;
                    }

                    if (!Wait(head, tail, 0, ref spins, ref slept, ref registration, deadline, cancellationToken))
                    {
                        return 0;
                    }

                    continue;
                }

                byte* at = At(head);
                long stamp = Volatile.Read(ref *(long*)at);
                if ((stamp & ~KindMask) != head)
                {
                    // Taken meanwhile: the head moved on. (If it did not, the memory is not a record: never spin on it past the deadline.)
                    if (Volatile.Read(ref Head) == head && !Wait(head, tail, 0, ref spins, ref slept, ref registration, deadline, cancellationToken))
                    {
                        return 0;
                    }

                    continue;
                }

                switch (stamp & KindMask)
                {
                    case Committed:
                        if (peek)
                        {
                            return 1;
                        }

                        int count = 0;
                        long end = head;
                        do
                        {
                            int length = *(int*)(At(end) + 8);
                            positions[count] = end;
                            lengths[count++] = length;
                            end += RecordSize(length);
                        }
                        while (count < positions.Length && end < tail && Volatile.Read(ref *(long*)At(end)) == (end | Committed));

                        if (Interlocked.CompareExchange(ref Head, end, head) != head)
                        {
                            continue;
                        }

                        for (int i = 0; i < count; i++)
                        {
                            byte* record = At(positions[i]);
                            *(int*)(record + 12) = _pid;
                            Volatile.Write(ref *(long*)record, positions[i] | Reading);
                        }

                        Interlocked.Add(ref ItemsTaken, count);
                        AfterTake(end);
                        TestHook?.Invoke(this, 3);
                        return count;

                    case Pad:
                        _ = Interlocked.CompareExchange(ref Head, head - (head & (RingSize - 1)) + RingSize, head);
                        break;

                    case Aborted:
                        if (Interlocked.CompareExchange(ref Head, head + RecordSize(*(int*)(at + 8)), head) == head)
                        {
                            Interlocked.Increment(ref ItemsTaken);
                            AfterTake(head + RecordSize(*(int*)(at + 8)));
                        }

                        break;

                    case Writing:
                        int writer = *(int*)(at + 12) & PidMask;
                        if (_peers.HasDied(writer))
                        {
                            if (Interlocked.CompareExchange(ref *(long*)at, head | Aborted, stamp) == stamp && (*(int*)(at + 12) & CountedFlag) != 0)
                            {
                                _ = TaskDoneCore(); // the item will never arrive: it is done
                            }

                            break;
                        }

                        if (!Wait(head, tail, writer, ref spins, ref slept, ref registration, deadline, cancellationToken))
                        {
                            return 0;
                        }

                        break;
                }
            }
        }
        finally
        {
            registration.Dispose();
            if (slept && Count > 0)
            {
                WakeConsumer(); // a wake we may have absorbed without taking anything goes on to another sleeper
            }
        }
    }

    /// <summary>Waits for the head record (or the tail, if empty) to change; false when the deadline passed.</summary>
    private bool Wait(long head, long tail, int writer, ref int spins, ref bool slept, ref CancellationTokenRegistration registration,
        Deadline deadline, CancellationToken cancellationToken)
    {
        if (deadline.HasPassed)
        {
            return false;
        }

        if (spins < SpinLimit)
        {
            spins++;
            if (spins % 32 == 31)
            {
                Thread.Yield();
            }
            else
            {
                Thread.SpinWait(20);
            }

            return true;
        }

        ThrowIfClosed();
        cancellationToken.ThrowIfCancellationRequested();
        if (registration == default)
        {
            registration = WakeOnCancel(cancellationToken);
        }

        if (writer != 0)
        {
            _peers.Watch(writer);
        }

        int seen = Volatile.Read(ref *DataSeq);
        Interlocked.Increment(ref *DataWaiters);
        try
        {
            if (Volatile.Read(ref Head) != head || Volatile.Read(ref Tail) != tail
                || (writer != 0 && (Volatile.Read(ref *(long*)At(head)) != (head | Writing) || _peers.HasDied(writer))))
            {
                return true;
            }

            slept = true;
            return Futex.Wait(DataSeq, seen, deadline) || !deadline.HasPassed;
        }
        finally
        {
            Interlocked.Decrement(ref *DataWaiters);
        }
    }

    private void AfterTake(long newHead)
    {
        if (Volatile.Read(ref *DataWaiters) > 0 && newHead != Volatile.Read(ref Tail))
        {
            WakeConsumer(); // more is ready: pass the baton to another sleeper
        }

        if (Volatile.Read(ref *SpaceWaiters) > 0)
        {
            Interlocked.Increment(ref *SpaceSeq);
            Futex.WakeAll(SpaceSeq);
        }
    }

    /// <summary>Frees a taken record once its payload has been read.</summary>
    public void Release(long position)
    {
        Interlocked.Exchange(ref *(long*)At(position), position | Freed);
        AfterRelease(position, position);
    }

    /// <summary>Frees several taken records (in the order taken).</summary>
    public void ReleaseMany(ReadOnlySpan<long> positions)
    {
        foreach (long position in positions)
        {
            Interlocked.Exchange(ref *(long*)At(position), position | Freed);
        }

        if (positions.Length > 0)
        {
            AfterRelease(positions[0], positions[^1]);
        }
    }

    /// <summary>
    /// Reclaiming is lazy: the consumer that finds the reclaim position at most <see cref="ReclaimLag"/> behind its
    /// records leaves it there (whoever frees past the lag, a producer short of room, or the consumer that drains the
    /// queue moves it on), so most takes cost no walk. When the oldest record is held by another reader, its death must
    /// be noticed: it is watched.
    /// </summary>
    private void AfterRelease(long first, long last)
    {
        long reclaim = Volatile.Read(ref ReclaimPosition);
        if (reclaim > last)
        {
            return;
        }

        if (last - reclaim >= ReclaimLag || Volatile.Read(ref Head) == Volatile.Read(ref Tail))
        {
            Reclaim();
            if (reclaim >= first)
            {
                return;
            }

            reclaim = Volatile.Read(ref ReclaimPosition);
            if (reclaim > last)
            {
                return;
            }
        }
        else if (reclaim >= first)
        {
            return;
        }

        byte* at = At(reclaim);
        if (Volatile.Read(ref *(long*)at) == (reclaim | Reading))
        {
            _peers.Watch(*(int*)(at + 12) & PidMask); // its death triggers a reclaim (OnPeerDied)
        }
    }

    /// <summary>Advances the reclaim position over freed records; one process at a time, others leave a request.</summary>
    private void Reclaim(bool claimLockHeld = false)
    {
        while (true)
        {
            Interlocked.Exchange(ref *ReclaimRequested, 1);
            int holder = Interlocked.CompareExchange(ref *ReclaimLock, _pid, 0);
            if (holder != 0)
            {
                _peers.Watch(holder);
                if (!_peers.HasDied(holder) || Interlocked.CompareExchange(ref *ReclaimLock, _pid, holder) != holder)
                {
                    return; // the holder sees the request when it lets go
                }
            }

            Interlocked.Exchange(ref *ReclaimRequested, 0);
            bool advanced = Walk(claimLockHeld);
            Interlocked.Exchange(ref *ReclaimLock, 0);
            if (advanced && Volatile.Read(ref *SpaceWaiters) > 0)
            {
                Interlocked.Increment(ref *SpaceSeq);
                Futex.WakeAll(SpaceSeq);
            }

            if (Volatile.Read(ref *ReclaimRequested) == 0)
            {
                return;
            }
        }
    }

    private bool Walk(bool claimLockHeld)
    {
        bool advanced = false;
        long reclaim = Volatile.Read(ref ReclaimPosition);
        while (reclaim < Volatile.Read(ref Head))
        {
            byte* at = At(reclaim);
            long stamp = Volatile.Read(ref *(long*)at);
            if ((stamp & ~KindMask) != reclaim)
            {
                break;
            }

            long size;
            switch (stamp & KindMask)
            {
                case Freed:
                case Aborted:
                    size = RecordSize(*(int*)(at + 8));
                    break;
                case Pad:
                    size = RingSize - (reclaim & (RingSize - 1));
                    break;
                case Reading:
                    int reader = *(int*)(at + 12) & PidMask;
                    if (reader == _pid)
                    {
                        return advanced;
                    }

                    _peers.Watch(reader);
                    if (!_peers.HasDied(reader))
                    {
                        return advanced;
                    }

                    size = RecordSize(*(int*)(at + 8)); // its reader died: the item went with it
                    break;
                default:
                    return advanced; // committed but in the instant of being taken
            }

            GiveBack(reclaim, reclaim + size, claimLockHeld);
            reclaim += size;
            Interlocked.Exchange(ref ReclaimPosition, reclaim); // then look at the next stamp again (a reader may free it now)
            advanced = true;
        }

        return advanced;
    }

    /// <summary>
    /// Returns to the OS the cold granules the reclaim position passes the end of, going from <paramref name="start"/>
    /// to <paramref name="end"/> (one lap), except those a producer has already started to reuse in the next lap. Done
    /// under the claim lock, so no producer can claim into a granule while it is punched out.
    /// </summary>
    private void GiveBack(long start, long end, bool claimLockHeld)
    {
        long lap = start - (start & (RingSize - 1));
        long from = Math.Max(start & ~(Granule - 1), lap + HotSize);
        long to = Math.Min(end & ~(Granule - 1), (Volatile.Read(ref ColdHigh) + Granule - 1) & ~(Granule - 1));
        if (to <= from)
        {
            return;
        }

        if (!claimLockHeld)
        {
            AcquireClaimLock();
        }

        try
        {
            // Bytes of the next lap written so far end at tail - RingSize (as positions of this lap): keep clear of them.
            from = Math.Max(from, (Tail - RingSize + Granule - 1) & ~(Granule - 1));
            if (to > from)
            {
                long offset = ControlSize + (from - lap);
                _ = Linux.LibC.fallocate((int)_region.Handle.DangerousGetHandle(), Linux.LibC.FALLOC_FL_PUNCH_HOLE | Linux.LibC.FALLOC_FL_KEEP_SIZE, offset, to - from);
            }
        }
        finally
        {
            if (!claimLockHeld)
            {
                ReleaseClaimLock();
            }
        }
    }

    // ---- joinable -------------------------------------------------------------------------------------------------

    /// <summary>Counts the claimed record as an unfinished task (JoinableQueue), before it is committed.</summary>
    public void CountUnfinished(long position)
    {
        Interlocked.Increment(ref Unfinished);
        *(int*)(At(position) + 12) |= CountedFlag;
    }

    /// <summary>One task done; <see cref="InvalidOperationException"/> if more than were put.</summary>
    public void TaskDone()
    {
        if (!TaskDoneCore())
        {
            throw new InvalidOperationException("TaskDone() called more times than there were items put in the queue.");
        }
    }

    private bool TaskDoneCore()
    {
        long unfinished;
        do
        {
            unfinished = Volatile.Read(ref Unfinished);
            if (unfinished <= 0)
            {
                return false;
            }
        }
        while (Interlocked.CompareExchange(ref Unfinished, unfinished - 1, unfinished) != unfinished);

        if (unfinished == 1 && Volatile.Read(ref *JoinWaiters) > 0)
        {
            Interlocked.Increment(ref *JoinSeq);
            Futex.WakeAll(JoinSeq);
        }

        return true;
    }

    /// <summary>Unfinished tasks (JoinableQueue).</summary>
    public long UnfinishedTasks => Volatile.Read(ref Unfinished);

    /// <summary>Waits until every item put has been marked done; false at the deadline.</summary>
    public bool Join(Deadline deadline, CancellationToken cancellationToken)
    {
        using CancellationTokenRegistration registration = WakeOnCancel(cancellationToken);
        while (true)
        {
            int seen = Volatile.Read(ref *JoinSeq);
            Interlocked.Increment(ref *JoinWaiters);
            try
            {
                if (Volatile.Read(ref Unfinished) <= 0)
                {
                    return true;
                }

                ThrowIfClosed();
                cancellationToken.ThrowIfCancellationRequested();
                if (!Futex.Wait(JoinSeq, seen, deadline) && deadline.HasPassed)
                {
                    return Volatile.Read(ref Unfinished) <= 0;
                }
            }
            finally
            {
                Interlocked.Decrement(ref *JoinWaiters);
            }
        }
    }

    // ---- channel completion ---------------------------------------------------------------------------------------

    /// <summary>Marks the queue complete (no more writes through channel views); wakes readers so they can see it.</summary>
    public bool Complete()
    {
        bool first = Interlocked.Exchange(ref *(int*)(_control + OffCompleted), 1) == 0;
        BumpAll();
        return first;
    }

    /// <summary>Waits until a put would not block; false at the deadline.</summary>
    public bool WaitToWrite(Deadline deadline, CancellationToken cancellationToken)
    {
        using CancellationTokenRegistration registration = WakeOnCancel(cancellationToken);
        while (true)
        {
            int seen = Volatile.Read(ref *SpaceSeq);
            Interlocked.Increment(ref *SpaceWaiters);
            try
            {
                if (MaxItems == 0 || Count < MaxItems || IsCompleted)
                {
                    return true;
                }

                ThrowIfClosed();
                cancellationToken.ThrowIfCancellationRequested();
                if (!Futex.Wait(SpaceSeq, seen, deadline) && deadline.HasPassed)
                {
                    return false;
                }
            }
            finally
            {
                Interlocked.Decrement(ref *SpaceWaiters);
            }
        }
    }

    /// <summary>Which other processes using the ring have died, learned from <see cref="ProcessWatch"/> (watched on demand, once per pid).</summary>
    private sealed class PeerWatch(MessageRing ring) : IDisposable
    {
        private readonly ConcurrentDictionary<int, IDisposable?> _watched = new();
        private readonly HashSet<int> _dead = [];
        private readonly Lock _gate = new();
        private volatile bool _anyDead;
        private bool _disposed;

        public void Watch(int pid)
        {
            if (pid == ring._pid || pid <= 0 || _watched.ContainsKey(pid) || !_watched.TryAdd(pid, null))
            {
                return;
            }

            IDisposable? registration = ProcessWatch.WhenExited(pid, () => Died(pid));
            lock (_gate)
            {
                if (_disposed || !_watched.TryUpdate(pid, registration, null))
                {
                    registration?.Dispose();
                }
            }
        }

        public bool HasDied(int pid)
        {
            if (!_anyDead)
            {
                return false;
            }

            lock (_gate)
            {
                if (!_dead.Contains(pid))
                {
                    return false;
                }
            }

            if (ProcessWatch.IsAlive(pid))
            {
                // The pid was reused by a new process: forget the old death and watch the new one.
                lock (_gate)
                {
                    _dead.Remove(pid);
                }

                _watched.TryRemove(pid, out _);
                Watch(pid);
                return false;
            }

            return true;
        }

        private void Died(int pid)
        {
            lock (_gate)
            {
                if (_disposed)
                {
                    return;
                }

                _dead.Add(pid);
                _anyDead = true;
            }

            ring.OnPeerDied();
        }

        public void Dispose()
        {
            lock (_gate)
            {
                _disposed = true;
            }

            foreach (IDisposable? registration in _watched.Values)
            {
                registration?.Dispose();
            }
        }
    }
}
