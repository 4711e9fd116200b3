using mp = Multiprocessing;
var sw = System.Diagnostics.Stopwatch.StartNew();
mp.Process.KeepSpareChild = args.Length == 0;
for (int i = 0; i < 10; i++) { sw.Restart(); var e = new mp.Process(() => { }); e.Start(); var a = sw.Elapsed.TotalMilliseconds; e.Join(); Console.WriteLine($"start {a:F1} join {sw.Elapsed.TotalMilliseconds:F1} code {e.ExitCode}"); Thread.Sleep(100); }
