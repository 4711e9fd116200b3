using mp = Multiprocessing;

namespace Tour;

/// <summary>The seeds' Pool examples, and what our pool does where CPython's hangs.</summary>
internal static class PoolExamples
{
    // Python:  def f(x): return x*x
    private static int F(int x) => x * x;

    public static void Run()
    {
        Section("Pool: p = Pool(4); result = p.map_async(f, range(10)); print result.get(timeout=1)");
        using (var p = new mp.Pool(4))
        {
            mp.AsyncResult<IReadOnlyList<int>> result = p.MapAsync(F, Enumerable.Range(0, 10));
            Console.WriteLine($"[{string.Join(", ", result.Get(TimeSpan.FromSeconds(30)))}]");

            // Python:  with Pool(5) as p: print(p.map(f, [1, 2, 3]))
            Console.WriteLine($"[{string.Join(", ", p.Map(F, [1, 2, 3]))}]");
        }

        Section("Beyond CPython: a worker that dies fails only its task, and a task can have a timeout");
        using (var pool = new mp.Pool(2))
        {
            try
            {
                // The worker kills itself, as the out-of-memory killer or a native crash would.
                pool.Apply(() => { System.Diagnostics.Process.GetCurrentProcess().Kill(); return 0; });
            }
            catch (mp.ProcessException ex)
            {
                Console.WriteLine($"ProcessException: {ex.Message}");
            }

            try
            {
                pool.Apply(() => { Thread.Sleep(Timeout.Infinite); return 0; }, timeout: TimeSpan.FromMilliseconds(200));
            }
            catch (TimeoutException ex)
            {
                Console.WriteLine($"TimeoutException: {ex.Message}");
            }

            Console.WriteLine($"the pool still works: {pool.Apply(() => F(12))}");
        }
    }

    private static void Section(string title) => Console.WriteLine($"{Environment.NewLine}== {title}");
}
