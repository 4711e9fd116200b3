// The synchronization examples of Python's processing/multiprocessing documents, in C#.
using mp = Multiprocessing;

namespace Tour;

internal static class SynchronizationExamples
{
    // Python:  def l(lock, num): lock.acquire(); print "Hello Num: %s" % (num); lock.release()
    private static void L(mp.Lock lk, int num)
    {
        lk.Acquire();
        Console.WriteLine($"Hello Num: {num}");
        lk.Release();
    }

    public static void Run()
    {
        Section("A Lock shared by ten processes: lock = Lock(); for num in range(10): Process(target=l, args=(lock, num)).start()");
        using var lk = new mp.Lock();
        var workers = Enumerable.Range(0, 10).Select(num => new mp.Process<mp.Lock, int>(L, lk, num)).ToList();
        workers.ForEach(w => w.Start());
        workers.ForEach(w => w.Join());

        Section("A Condition over its default RLock: c = Condition(); print c; c.acquire(); print c");
        using var c = new mp.Condition();
        Console.WriteLine(c);
        c.Acquire();
        Console.WriteLine(c);
        c.Release();

        Section("with lock: — EnterScope, from a child too; a lock whose holder is killed is abandoned to the next acquirer");
        using var holding = new mp.Event();
        var holder = new mp.Process(() =>
        {
            using (lk.EnterScope())
            {
                Console.WriteLine($"{mp.Process.Current.Name} holds the lock and will be killed holding it");
                holding.Set();
                Thread.Sleep(Timeout.Infinite);
            }
        });
        holder.Start();
        holding.Wait();
        holder.Kill();
        holder.Join();
        try
        {
            lk.Acquire();
        }
        catch (AbandonedMutexException)
        {
            Console.WriteLine("AbandonedMutexException: the holder died; this process owns the lock now");
        }

        lk.Release();

        Section("Event and Barrier: three processes meet at a barrier; the action runs once per pass");
        using var started = new mp.Event();
        using var barrier = new mp.Barrier(3, () => Console.WriteLine("  all three arrived (the barrier's action)"));
        var parties = Enumerable.Range(1, 2).Select(i => new mp.Process(() =>
        {
            started.Wait();
            int index = barrier.Wait();
            Console.WriteLine($"  party {i} passed with index {index}");
        })).ToList();
        parties.ForEach(p => p.Start());
        started.Set();
        Console.WriteLine($"  the main process passed with index {barrier.Wait()}");
        parties.ForEach(p => p.Join());
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
