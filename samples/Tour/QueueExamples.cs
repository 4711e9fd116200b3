// The seeds' queue examples, in C#: Python's multiprocessing.Queue as mp.Queue<T>.
using mp = Multiprocessing;

namespace Tour;

internal static class QueueExamples
{
    // Python:  def f(q): q.put('hello world')
    private static void F(mp.Queue<string> q) => q.Put("hello world");

    // Python:  def offer(queue): queue.put("Hello World")
    private static void Offer(mp.Queue<string> queue) => queue.Put("Hello World");

    // Python:  def f(q): for i in range(10): q.put(i*i); q.put('STOP')
    private static void Squares(mp.Queue<object> q)
    {
        for (int i = 0; i < 10; i++)
        {
            q.Put(i * i);
        }

        q.Put("STOP");
    }

    public static void Run()
    {
        Section("Queues: q = Queue(); p = Process(target=f, args=[q]); p.start(); print q.get(); p.join()");
        var q = new mp.Queue<string>();
        var p = new mp.Process<mp.Queue<string>>(F, q);
        p.Start();
        Console.WriteLine(q.Get());
        p.Join();

        Section("Queue: a child offers \"Hello World\", the parent gets it");
        var queue = new mp.Queue<string>();
        var offer = new mp.Process<mp.Queue<string>>(Offer, queue);
        offer.Start();
        Console.WriteLine(queue.Get());
        offer.Join();

        Section("Queue(maxsize=10): a child puts squares then 'STOP'; the parent gets until STOP (Python used manager.Queue; a shared-memory queue does the same)");
        var bounded = new mp.Queue<object>(maxSize: 10);
        var squares = new mp.Process<mp.Queue<object>>(Squares, bounded);
        squares.Start();
        object? result = null;
        while (!"STOP".Equals(result))
        {
            result = bounded.Get();
            Console.WriteLine(result);
        }

        squares.Join();

        Section("Python's blocking and timeouts: Get(timeout) raises QueueEmptyException, Put(item, timeout) on a full queue QueueFullException");
        var one = new mp.Queue<int>(maxSize: 1);
        one.Put(1);
        try
        {
            one.Put(2, TimeSpan.FromMilliseconds(100));
        }
        catch (mp.QueueFullException ex)
        {
            Console.WriteLine($"Put: {ex.Message}");
        }

        Console.WriteLine($"Get: {one.Get()}");
        try
        {
            _ = one.Get(TimeSpan.FromMilliseconds(100));
        }
        catch (mp.QueueEmptyException ex)
        {
            Console.WriteLine($"Get: {ex.Message}");
        }

        Section("JoinableQueue: workers call TaskDone(), the parent Join()s");
        var tasks = new mp.JoinableQueue<int>();
        var results = new mp.Queue<string>();
        var worker = new mp.Process(() =>
        {
            while (true)
            {
                int n = tasks.Get();
                results.Put($"{n} squared is {n * n}");
                tasks.TaskDone();
            }
        }, daemon: true);
        worker.Start();
        tasks.PutMany([2, 3, 4]);
        tasks.Join();
        Console.WriteLine($"all {results.Count} tasks done: {string.Join(", ", new[] { results.Get(), results.Get(), results.Get() })}");
        worker.Terminate();
        worker.Join();
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
