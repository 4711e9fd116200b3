using Multiprocessing.Platform;
using Multiprocessing.Platform.Linux;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>
/// A child that returns hands the freeing of its memory to a helper its parent reaps later (so Join returns sooner);
/// these check that Join still means the child is gone, and that the helpers do not linger.
/// </summary>
public sealed class ProcessExitTests
{
    private static LinuxProcessBackend Backend => (LinuxProcessBackend)ProcessBackend.Current;

    [Fact]
    public void Children_that_return_leave_helpers_that_are_reaped()
    {
        long before = Backend.TeardownHelpersReaped;
        for (int i = 0; i < 3; i++)
        {
            var p = new mp.Process(() => { });
            Bounded.Run(p);
            Assert.Equal(0, p.ExitCode);
        }

        // Other tests' children may end meanwhile too: at least these three helpers must have come and gone.
        long deadline = Environment.TickCount64 + (long)Bounded.Long.TotalMilliseconds;
        while (Backend.TeardownHelpersReaped < before + 3 && Environment.TickCount64 < deadline)
        {
            Backend.AwaitTeardownHelpers(TimeSpan.FromMilliseconds(200));
        }

        Assert.True(Backend.TeardownHelpersReaped >= before + 3, $"only {Backend.TeardownHelpersReaped - before} teardown helpers were reaped for 3 children");
    }

    [Fact]
    public void After_join_the_childs_end_of_a_pipe_is_closed_at_once()
    {
        for (int i = 0; i < 10; i++)
        {
            (mp.Connection here, mp.Connection there) = mp.Pipe.Create();
            using (here)
            {
                var p = new mp.Process(() => there.Send(42));
                p.Start();
                there.Close(); // the child holds the only other copy
                Bounded.Join(p);
                Assert.Equal(0, p.ExitCode);
                Assert.Equal(42, here.Recv<int>());

                // Join returned, so the child's descriptors are closed: end of stream is there now, without waiting.
                Assert.True(here.Poll(TimeSpan.Zero), "the child's end of the pipe was still open after Join");
                _ = Assert.Throws<EndOfStreamException>(() => here.Recv<int>());
            }
        }
    }

    [Fact]
    public void An_unhandled_exception_still_exits_with_1_and_reports_the_error()
    {
        var p = new mp.Process(() => throw new InvalidOperationException("boom at the end"));
        p.Start();
        Bounded.Join(p);
        Assert.Equal(1, p.ExitCode);
        Assert.Contains("boom at the end", p.Error!.Message, StringComparison.Ordinal);
    }
}
