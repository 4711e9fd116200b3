using System.Runtime.Serialization;
using Multiprocessing.Serialization;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>C# shares one closure object among the lambdas of a scope; only what a lambda reads must be able to cross.</summary>
public sealed class ClosureCaptureTests
{
    [Fact]
    public void A_sibling_lambdas_uncrossable_capture_does_not_block_a_target()
    {
        using var scratch = new ScratchDirectory();
        string path = scratch.File("out");
        using var log = new StreamWriter(new MemoryStream());
        var first = new mp.Process(() => File.WriteAllText(path, "ran"));
        Action usesLog = () => log.WriteLine(first.Name); // same scope: the closure also holds `log` and `first`
        Bounded.Run(first);
        Assert.Equal("ran", File.ReadAllText(path));
        Assert.NotNull(usesLog);
    }

    [Fact]
    public void Lambdas_created_in_a_loop_start_and_see_their_captures()
    {
        using var scratch = new ScratchDirectory();
        int answer = 40;
        var processes = new List<mp.Process>();
        for (int i = 0; i < 3; i++)
        {
            int index = i;
            string path = scratch.File($"out{i}");
            processes.Add(new mp.Process(() => File.WriteAllText(path, (answer + index).ToString(System.Globalization.CultureInfo.InvariantCulture))));
        }

        foreach (mp.Process p in processes)
        {
            Bounded.Run(p);
            Assert.Equal(0, p.ExitCode);
        }

        Assert.Equal(["40", "41", "42"], Enumerable.Range(0, 3).Select(i => File.ReadAllText(scratch.File($"out{i}"))));
    }

    [Fact]
    public void A_lambda_in_a_loop_over_a_shared_outer_closure_starts()
    {
        int answer = 42;
        for (int i = 0; i < 2; i++)
        {
            using var p = new mp.Process(() => Console.WriteLine($"child sees {answer}"));
            Bounded.Run(p);
            Assert.Equal(0, p.ExitCode);
            Assert.Null(p.Error);
        }
    }

    [Fact]
    public void The_lambda_that_reads_the_capture_still_fails()
    {
        using var log = new StreamWriter(new MemoryStream());
        int unused = 1;
        Action reads = () => log.WriteLine(unused);
        var ex = Assert.Throws<SerializationException>(() => BinarySerializer.Default.Serialize(reads));
        Assert.Contains("closure field 'log'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_closure_sent_once_for_two_lambdas_fails_if_either_reads_the_skipped_capture()
    {
        using var log = new StreamWriter(new MemoryStream());
        int number = 5;
        Func<int> pure = () => number;
        Action impure = () => log.WriteLine(number);
        Func<int> copy = BinarySerializer.Default.Deserialize<Func<int>>(BinarySerializer.Default.Serialize(pure));
        Assert.Equal(5, copy());

        // Built outside the assertion's lambda, which would otherwise capture both delegates into the same closure.
        var both = new List<Delegate> { pure, impure };
        var ex = Assert.Throws<SerializationException>(() => BinarySerializer.Default.Serialize(both));
        Assert.Contains("closure field 'log'", ex.Message, StringComparison.Ordinal);
    }
}
