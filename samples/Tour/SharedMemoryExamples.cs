// "Objects can be shared between processes using a server process or (for simple data) shared memory." (processing's
// feature list). The shared-memory half, as the C# twins of the examples in Python's documentation of Value, Array,
// shared_memory.SharedMemory, ShareableList and SharedMemoryManager.
using System.Globalization;
using mp = Multiprocessing;

namespace Tour;

internal static class SharedMemoryExamples
{
    public static void Run()
    {
        ValueAndArray();
        CounterUnderItsLock();
        SharedMemoryBlocks();
        ShareableLists();
        ManagerDividesTheWork();
    }

    // Python:
    //   def f(n, a):
    //       n.value = 3.1415927
    //       for i in range(len(a)): a[i] = -a[i]
    //   num = Value('d', 0.0); arr = Array('i', range(10))
    //   p = Process(target=f, args=(num, arr)); p.start(); p.join()
    //   print(num.value); print(arr[:])
    private static void F(mp.SharedValue<double> n, mp.SharedArray<int> a)
    {
        n.Value = 3.1415927;
        for (int i = 0; i < a.Length; i++)
        {
            a[i] = -a[i];
        }
    }

    private static void ValueAndArray()
    {
        Section("Shared memory: num = Value('d', 0.0); arr = Array('i', range(10)); a child negates them in place");
        using var num = new mp.SharedValue<double>(0.0);
        using var arr = new mp.SharedArray<int>([.. Enumerable.Range(0, 10)]);
        var p = new mp.Process<mp.SharedValue<double>, mp.SharedArray<int>>(F, num, arr);
        p.Start();
        p.Join();
        Console.WriteLine(num.Value.ToString(CultureInfo.InvariantCulture));
        Console.WriteLine($"[{string.Join(", ", arr[..])}]");
    }

    // Python:
    //   def worker(counter):
    //       for _ in range(1000):
    //           with counter.get_lock(): counter.value += 1
    private static void CounterUnderItsLock()
    {
        Section("Four processes increment one Value under its lock (and with the atomic Increment, which CPython lacks)");
        using var counter = new mp.SharedValue<int>(0);
        using var atomic = new mp.SharedValue<long>(0, locked: false);
        var workers = Enumerable.Range(0, 4).Select(_ => new mp.Process(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                using (counter.GetLock().EnterScope())
                {
                    counter.Value += 1;
                }

                atomic.Increment();
            }
        })).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());
        Console.WriteLine($"counter.Value = {counter.Value}, atomic.Value = {atomic.Value} (4 × 1000 each)");
    }

    // Python (shared_memory docs):
    //   shm_a = shared_memory.SharedMemory(create=True, size=10)
    //   buffer = shm_a.buf; buffer[:4] = bytearray([22, 33, 44, 55]); buffer[4] = 100
    //   shm_b = shared_memory.SharedMemory(shm_a.name)
    //   array.array('b', shm_b.buf[:5])       # array('b', [22, 33, 44, 55, 100])
    //   shm_b.buf[:5] = b'howdy'
    //   bytes(shm_a.buf[:5])                  # b'howdy'
    //   shm_b.close(); shm_a.close(); shm_a.unlink()
    private static void SharedMemoryBlocks()
    {
        Section("SharedMemory: create a named block, attach to it by name, and see each other's writes");
        var shmA = new mp.SharedMemory(create: true, size: 10);
        Span<byte> buffer = shmA.Span;
        new byte[] { 22, 33, 44, 55 }.CopyTo(buffer);
        buffer[4] = 100;
        var shmB = new mp.SharedMemory(shmA.Name);
        Console.WriteLine($"{shmB}: [{string.Join(", ", shmB.Span[..5].ToArray().Select(b => (sbyte)b))}]");
        "howdy"u8.CopyTo(shmB.Span);
        Console.WriteLine(System.Text.Encoding.ASCII.GetString(shmA.Span[..5]));

        // A child gets the block itself (as a handle), so it even works after the name is gone.
        shmA.Unlink();
        var child = new mp.Process(() => "HOWDY"u8.CopyTo(shmB.Span));
        child.Start();
        child.Join();
        Console.WriteLine($"after a child wrote into the unlinked block: {System.Text.Encoding.ASCII.GetString(shmA.Span[..5])}");
        shmB.Close();
        shmA.Close();
    }

    // Python (ShareableList docs):
    //   a = shared_memory.ShareableList(['howdy', b'HoWdY', -273.154, 100, None, True, 42])
    //   a[2] = -78.5; a[2] = 'dry ice'; a[2] = 'larger than previously allocated storage space'  # ValueError
    //   len(a); a.index(42); a.count(b'howdy'); a.count(b'HoWdY')
    private static void ShareableLists()
    {
        Section("ShareableList: fixed length, typed slots, Python's own layout (Python can attach to it by name)");
        var a = new mp.ShareableList(["howdy", "HoWdY"u8.ToArray(), -273.154, 100, null, true, 42]);
        Console.WriteLine(string.Join(", ", a.Select(entry => entry?.GetType().Name ?? "null")));
        Console.WriteLine(((double)a[2]!).ToString(CultureInfo.InvariantCulture));
        a[2] = -78.5;
        Console.WriteLine(((double)a[2]!).ToString(CultureInfo.InvariantCulture));
        a[2] = "dry ice"; // changing a slot's type is supported as well
        Console.WriteLine(a[2]);
        try
        {
            a[2] = "larger than previously allocated storage space";
        }
        catch (ArgumentException ex)
        {
            Console.WriteLine($"ArgumentException: {ex.Message}");
        }

        Console.WriteLine($"{a[2]}; Count = {a.Count}; IndexOf(42) = {a.IndexOf(42)}; CountOf(\"howdy\"u8) = {a.CountOf("howdy"u8.ToArray())}; CountOf(\"HoWdY\"u8) = {a.CountOf("HoWdY"u8.ToArray())}");
        a.Shm.Close();
        a.Shm.Unlink();
    }

    // Python (SharedMemoryManager docs):
    //   with SharedMemoryManager() as smm:
    //       sl = smm.ShareableList(range(2000))
    //       p1 = Process(target=do_work, args=(sl, 0, 1000)); p2 = Process(target=do_work, args=(sl, 1000, 2000))
    //       p1.start(); p2.start(); p1.join(); p2.join()
    //       total_result = sum(sl)
    private static void DoWork(mp.ShareableList sl, int start, int end)
    {
        for (int i = start; i < end; i++)
        {
            sl[i] = (long)sl[i]! * 2;
        }
    }

    private static void ManagerDividesTheWork()
    {
        Section("SharedMemoryManager: two processes double halves of a ShareableList(range(2000)); the manager unlinks it");
        string name;
        using (var smm = new mp.SharedMemoryManager())
        {
            mp.ShareableList sl = smm.ShareableList(Enumerable.Range(0, 2000).Select(i => (object?)i));
            name = sl.Name;
            var p1 = new mp.Process<mp.ShareableList, int, int>(DoWork, sl, 0, 1000);
            var p2 = new mp.Process<mp.ShareableList, int, int>(DoWork, sl, 1000, 2000);
            p1.Start();
            p2.Start();
            p1.Join();
            p2.Join();
            Console.WriteLine($"total_result = {sl.Sum(x => (long)x!)}");
        }

        Console.WriteLine($"/dev/shm/{name} exists after the manager: {File.Exists("/dev/shm/" + name)}");
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
