using mp = Multiprocessing;

namespace Multiprocessing.Tests;

public sealed class PipeSmokeTests
{
    [Fact]
    public void Objects_and_bytes_go_through_a_pipe_in_order()
    {
        (mp.Connection a, mp.Connection b) = mp.Pipe.Create();
        using (a)
        using (b)
        {
            a.Send(new List<int> { 1, 2, 3 });
            a.SendBytes([]);
            a.SendBytes(new byte[100_000]);
            b.Send("reply");
            Assert.Equal([1, 2, 3], b.Recv<List<int>>());
            Assert.Empty(b.RecvBytes());
            Assert.Equal(100_000, b.RecvBytes().Length);
            Assert.Equal("reply", a.Recv<string>());
            a.Close();
            Assert.Throws<EndOfStreamException>(() => b.RecvBytes());
        }
    }
}
