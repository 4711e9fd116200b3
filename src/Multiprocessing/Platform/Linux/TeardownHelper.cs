using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Multiprocessing.Platform.Linux;

/// <summary>
/// Lets a child end without making its parent wait for the kernel to free its address space.
/// </summary>
/// <remarks>
/// <para>
/// When a process exits, its last thread frees every page of its address space before the process becomes a zombie
/// that the parent can reap: for a .NET runtime that is 3–9 ms here, most of a spare child's start + join. So just
/// before <c>_exit</c> the child clones a helper task that shares its address space (<c>CLONE_VM</c>) and little
/// else: every signal blocked, no managed code (it runs libc's <c>usleep</c> on a stack of its own), and a descriptor
/// table that holds only the runtime's own code memory (already mapped anyway).
/// The child's threads then exit without freeing the memory (the helper still uses it), the parent reaps the child at
/// once, and the helper, after a few milliseconds, exits and pays for the teardown on its own time.
/// </para>
/// <para>
/// The helper is the parent's child (<c>CLONE_PARENT</c>), so its pid stays reserved until the parent reaps it. The
/// child tells the parent that pid in a last control frame; the parent's watcher reaps the helper when it ends.
/// Nothing of the child runs after it has been reaped: its threads are gone, its descriptors closed (its pipes and
/// sockets reach end of stream); only its memory mappings live on in the sleeping helper for those milliseconds. If
/// anything here fails, the child simply exits the ordinary way.
/// </para>
/// </remarks>
internal static unsafe partial class TeardownHelper
{
    /// <summary>The control frame kind that carries the helper's pid (after the kinds in <c>ChildProtocol</c>).</summary>
    public const byte FrameKind = 4;

    private const int FrameLength = 9; // 4-byte length (5), kind, 4-byte pid

    private const int CLONE_VM = 0x100;
    private const int CLONE_FILES = 0x400;
    private const int CLONE_PARENT = 0x8000;
    private const int SIGCHLD = 17;
    private const uint CLOSE_RANGE_UNSHARE = 2;
    private const int PROT_READ_WRITE = 0x3;
    private const int MAP_PRIVATE_ANONYMOUS_STACK = 0x02 | 0x20 | 0x20000;
    private const int StackSize = 64 * 1024;

    /// <summary>How long the helper outlives the call: ample for the child's threads to exit, short enough to free the memory soon.</summary>
    private const int SleepMicroseconds = 10_000;

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int close_range(uint first, uint last, uint flags);

    [LibraryImport("libc.so.6")]
    private static partial nint readlink(byte* path, byte* buffer, nint size);

    [LibraryImport("libc.so.6", SetLastError = true)]
    private static partial int clone(nint function, void* stack, int flags, nint argument);

    private static nint s_usleep;
    private static void* s_stack;
    private static int s_executableMemoryFd = -2; // -2: not looked for yet, or W^X on and not found (then no helper); -1: W^X off

    /// <summary>
    /// Works out ahead of time what the exit needs (a spare child does it while it waits for work): what the helper
    /// runs, its stack, and the runtime's own descriptor for writing code under W^X, which this thread must keep.
    /// </summary>
    public static void Prepare()
    {
        if (s_usleep == 0)
        {
            s_usleep = NativeLibrary.GetExport(NativeLibrary.Load("libc.so.6"), "usleep");
        }

        if (s_executableMemoryFd == -2)
        {
            s_executableMemoryFd = FindExecutableMemoryFd();
        }

        if (s_stack == null)
        {
            void* stack = LibC.mmap(null, StackSize, PROT_READ_WRITE, MAP_PRIVATE_ANONYMOUS_STACK, -1, 0);
            s_stack = stack == (void*)-1 ? null : stack;
        }

        _ = close_range(uint.MaxValue, uint.MaxValue, 0); // binds the entry point now (closes nothing)
    }

    /// <summary>
    /// The runtime maps the code it generates from a memfd of its own (write-xor-execute, on by default): with that
    /// descriptor closed it cannot emit a stub and fails fast. -1 if W^X is off; -2 (do not use the helper) if it is on
    /// but the descriptor cannot be found.
    /// </summary>
    private static int FindExecutableMemoryFd()
    {
        // By hand (readlink on each descriptor) rather than through DirectoryInfo: a cold child runs this beside its
        // main thread, and the managed file system types would cost it a millisecond of type loading.
        byte* path = stackalloc byte[32];
        byte* target = stackalloc byte[256];
        ReadOnlySpan<byte> wanted = "/memfd:doublemapper"u8;
        for (int fd = 0; fd < 1024; fd++)
        {
            var pathSpan = new Span<byte>(path, 32);
            "/proc/self/fd/"u8.CopyTo(pathSpan);
            int length = "/proc/self/fd/"u8.Length;
            length += RuntimeLeftovers.FormatDecimal(fd, pathSpan[length..]);
            path[length] = 0;
            nint n = readlink(path, target, 255);
            if (n >= wanted.Length && new ReadOnlySpan<byte>(target, (int)n).StartsWith(wanted))
            {
                return fd;
            }
        }

        return Environment.GetEnvironmentVariable("DOTNET_EnableWriteXorExecute") == "0" ? -1 : -2;
    }

    /// <summary>
    /// Starts the helper and tells the parent its pid over <paramref name="control"/>; false if it could not be started
    /// (the caller then just exits). Only for a child about to call <c>_exit</c>: this thread is left with every signal
    /// blocked and a descriptor table of its own holding little more than standard error (and not even the control
    /// channel, once it returns true).
    /// </summary>
    public static bool TryStart(int control)
    {
        try
        {
            Prepare();
            if (control < 3 || s_stack == null || s_executableMemoryFd == -2)
            {
                return false;
            }

            // Block every signal on this thread: the helper inherits the mask, so nothing but SIGKILL can end it early.
            if (!LibC.BlockAllSignals())
            {
                return false;
            }

            // Give this thread a descriptor table of its own holding only standard error (for a last fatal message), the
            // control socket and the runtime's code memory; the other threads keep theirs and lose it when the process
            // exits, so nothing they are doing is disturbed. The helper then shares this small table.
            Span<int> keep = [2, control, s_executableMemoryFd];
            keep.Sort();
            uint next = 0;
            bool unshared = false;
            foreach (int fd in keep)
            {
                if (fd < 0 || (uint)fd < next)
                {
                    continue;
                }

                if ((uint)fd > next && !CloseRange(next, (uint)fd - 1, ref unshared))
                {
                    return false;
                }

                next = (uint)fd + 1;
            }

            if (!CloseRange(next, uint.MaxValue, ref unshared))
            {
                return false;
            }

            int pid = clone(s_usleep, (byte*)s_stack + StackSize - 64, CLONE_VM | CLONE_FILES | CLONE_PARENT | SIGCHLD, SleepMicroseconds);
            if (pid <= 0)
            {
                return false;
            }

            byte* frame = stackalloc byte[FrameLength];
            BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(frame, 4), FrameLength - 4);
            frame[4] = FrameKind;
            BinaryPrimitives.WriteInt32LittleEndian(new Span<byte>(frame + 5, 4), pid);
            bool sent = LibC.send(control, frame, FrameLength, LibC.MSG_NOSIGNAL) == FrameLength;
            _ = LibC.close(control);
            _ = LibC.close(2);
            return sent;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>Closes [<paramref name="first"/>, <paramref name="last"/>], on the first call after giving this thread a copy of the table.</summary>
    private static bool CloseRange(uint first, uint last, ref bool unshared)
    {
        if (close_range(first, last, unshared ? 0 : CLOSE_RANGE_UNSHARE) != 0)
        {
            return false;
        }

        unshared = true;
        return true;
    }

    /// <summary>The helper pid a child reported in <paramref name="received"/> (everything it wrote on its control channel), if any.</summary>
    public static int? FindReportedPid(ReadOnlySpan<byte> received)
    {
        // Walk the frames from the start: a frame's body could contain bytes that look like this frame.
        int offset = 0;
        int? pid = null;
        while (received.Length - offset >= 5)
        {
            int length = BinaryPrimitives.ReadInt32LittleEndian(received[offset..]);
            if (length < 1 || length > received.Length - offset - 4)
            {
                break;
            }

            if (received[offset + 4] == FrameKind && length == FrameLength - 4)
            {
                pid = BinaryPrimitives.ReadInt32LittleEndian(received[(offset + 5)..]);
            }

            offset += 4 + length;
        }

        return pid;
    }
}
