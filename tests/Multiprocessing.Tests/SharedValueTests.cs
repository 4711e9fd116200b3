using System.Runtime.Serialization;
using Multiprocessing.Platform;
using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>SharedValue and SharedArray: Python's Value and Array, plus atomic integer operations.</summary>
public sealed unsafe class SharedValueTests
{
    private const int PerProcess = 100_000;

    /// <summary>Spin iterations per increment in the two-process tests: each loop then lasts tens of milliseconds, longer than a time slice.</summary>
    private const int Dawdle = 20;

    internal struct Point3
    {
        public double X;
        public double Y;
        public double Z;
    }

    [Fact]
    public void Two_processes_incrementing_under_the_lock_100k_times_each_end_at_exactly_200k()
    {
        using var counter = new mp.SharedValue<int>(0);
        using var ready = new mp.SharedValue<int>(0, locked: false);
        using var gate = new mp.Lock();
        Assert.IsType<mp.RLock>(counter.GetLock());
        var workers = Enumerable.Range(0, 2).Select(_ => new mp.Process(() =>
        {
            WaitForTheOthers(ready, gate);
            mp.ILock lk = counter.GetLock();
            for (int i = 0; i < PerProcess; i++)
            {
                using (lk.EnterScope())
                {
                    // Read, dawdle, write: without the lock the other process's increments in between would be lost.
                    int seen = counter.Value;
                    Thread.SpinWait(Dawdle);
                    counter.Value = seen + 1;
                }
            }
        })).ToArray();
        StartTogether(workers, ready, gate);
        foreach (mp.Process worker in workers)
        {
            Bounded.Join(worker);
            Assert.Equal(0, worker.ExitCode);
        }

        Assert.Equal(2 * PerProcess, counter.Value);
    }

    [Fact]
    public void Two_processes_using_Increment_without_a_lock_end_at_exactly_200k()
    {
        using var counter = new mp.SharedValue<long>(0, locked: false);
        using var ready = new mp.SharedValue<int>(0, locked: false);
        using var gate = new mp.Lock();
        Assert.False(counter.HasLock);
        Assert.Throws<InvalidOperationException>(counter.GetLock);
        var workers = Enumerable.Range(0, 2).Select(_ => new mp.Process<mp.SharedValue<long>>(c =>
        {
            WaitForTheOthers(ready, gate);
            for (int i = 0; i < PerProcess; i++)
            {
                c.Increment();
                Thread.SpinWait(Dawdle); // stretches the loop, so the two processes surely overlap
            }
        }, counter)).ToArray();
        StartTogether(workers, ready, gate);

        foreach (mp.Process worker in workers)
        {
            Bounded.Join(worker);
            Assert.Equal(0, worker.ExitCode);
        }

        Assert.Equal(2L * PerProcess, counter.Value);
    }

    [Fact]
    public void A_value_and_an_array_given_an_existing_lock_share_it_with_each_other_and_with_children()
    {
        using var lk = new mp.Lock();
        using var total = new mp.SharedValue<int>(0, lk);
        using var history = new mp.SharedArray<int>(4, lk);
        using var ready = new mp.SharedValue<int>(0, locked: false);
        using var gate = new mp.Lock();
        Assert.Same(lk, total.GetLock());
        Assert.Same(lk, history.GetLock());
        var workers = Enumerable.Range(0, 2).Select(n => new mp.Process(() =>
        {
            WaitForTheOthers(ready, gate);
            for (int i = 0; i < 10_000; i++)
            {
                using (total.GetLock().EnterScope())
                {
                    int seen = total.Value;
                    Thread.SpinWait(Dawdle * 10);
                    total.Value = seen + 1;
                    history[n] += 1;
                }
            }

            if (!ReferenceEquals(total.GetLock(), history.GetLock()))
            {
                throw new InvalidOperationException("the child got two locks for one");
            }
        })).ToArray();
        StartTogether(workers, ready, gate);
        foreach (mp.Process worker in workers)
        {
            Bounded.Join(worker);
            Assert.Equal(0, worker.ExitCode);
        }

        Assert.Equal(20_000, total.Value);
        Assert.Equal([10_000, 10_000, 0, 0], history.ToArray());

        using var recursive = new mp.RLock();
        using var guarded = new mp.SharedValue<double>(1.5, recursive);
        Assert.Same(recursive, guarded.GetLock());
    }

    [Fact]
    public void Atomic_operations_have_Interlocked_semantics_for_every_integer_type()
    {
        using var i32 = new mp.SharedValue<int>(5);
        Assert.Equal(6, i32.Increment());
        Assert.Equal(5, i32.Decrement());
        Assert.Equal(15, i32.Add(10));
        Assert.Equal(15, i32.Exchange(3));
        Assert.Equal(3, i32.CompareExchange(7, 3));
        Assert.Equal(7, i32.CompareExchange(9, 3)); // comparand differs: unchanged
        Assert.Equal(7, i32.Value);
        i32.Value = int.MaxValue;
        Assert.Equal(int.MinValue, i32.Increment()); // wraps, as Interlocked does

        using var u64 = new mp.SharedValue<ulong>(ulong.MaxValue);
        Assert.Equal(0UL, u64.Increment());
        Assert.Equal(ulong.MaxValue - 1, u64.Add(ulong.MaxValue - 1));
        using var i64 = new mp.SharedValue<long>(-1);
        Assert.Equal(long.MaxValue - 1, i64.Add(long.MaxValue));
        using var u32 = new mp.SharedValue<uint>(0);
        Assert.Equal(uint.MaxValue, u32.Decrement());
        using var i16 = new mp.SharedValue<short>(short.MaxValue);
        Assert.Equal(short.MinValue, i16.Increment());
        Assert.Equal(short.MinValue, i16.Exchange(4));
        using var u16 = new mp.SharedValue<ushort>(1);
        Assert.Equal((ushort)3, u16.Add(2));
        using var u8 = new mp.SharedValue<byte>(255);
        Assert.Equal((byte)0, u8.Increment());
        Assert.Equal((byte)0, u8.CompareExchange(9, 0));
        Assert.Equal((byte)9, u8.Value);
        using var i8 = new mp.SharedValue<sbyte>(-128);
        Assert.Equal((sbyte)127, i8.Decrement());
        using var native = new mp.SharedValue<nint>(40);
        Assert.Equal((nint)42, native.Add(2));

        using var real = new mp.SharedValue<double>(1.5);
        Assert.Equal(1.5, real.Exchange(2.5));
        Assert.Equal(2.5, real.CompareExchange(3.5, 2.5));
        Assert.Equal(3.5, real.Value);
        Assert.Throws<NotSupportedException>(() => real.Increment());
        Assert.Throws<NotSupportedException>(() => real.Add(1));
        using var point = new mp.SharedValue<Point3>();
        Assert.Throws<NotSupportedException>(() => point.Exchange(default));
    }

    [Fact]
    public void A_child_sees_and_changes_a_struct_value_and_the_parent_sees_the_change()
    {
        using var point = new mp.SharedValue<Point3>(new Point3 { X = 1, Y = 2, Z = 3 });
        using var flag = new mp.SharedValue<bool>(false);
        var child = new mp.Process(() =>
        {
            using (point.GetLock().EnterScope())
            {
                Point3 p = point.Value;
                point.Value = new Point3 { X = p.X * 10, Y = p.Y * 10, Z = p.Z * 10 };
            }

            flag.Value = true;
        });
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.True(flag.Value);
        Assert.Equal((10.0, 20.0, 30.0), (point.Value.X, point.Value.Y, point.Value.Z));
        Assert.Equal("SharedValue<Boolean>(True)", flag.ToString());
    }

    [Fact]
    public void Writes_the_parent_makes_after_the_start_reach_the_running_child_and_back_without_copying()
    {
        using var gate = new mp.Lock();
        using var value = new mp.SharedValue<long>(0, locked: false);
        using var array = new mp.SharedArray<int>(3, locked: false);
        using var block = new mp.SharedMemory(create: true, size: 16);
        try
        {
            gate.Acquire();
            var child = new mp.Process(() =>
            {
                gate.Acquire(); // released once the parent has written
                gate.Release();
                if (value.Value != 42 || array[2] != 7 || block.Span[15] != 9)
                {
                    throw new InvalidOperationException($"the child saw {value.Value}, {array[2]}, {block.Span[15]}");
                }

                value.Value = 43;
                array[0] = 8;
                block.Span[0] = 10;
            });
            child.Start();
            value.Value = 42;
            array[2] = 7;
            block.Span[15] = 9;
            gate.Release();
            Bounded.Join(child);
            Assert.Equal(0, child.ExitCode);
            Assert.Equal((43L, 8, (byte)10), (value.Value, array[0], block.Span[0]));
        }
        finally
        {
            block.Unlink();
        }
    }

    [Fact]
    public void Values_and_arrays_refuse_channels_that_cannot_carry_handles_and_fail_clearly_once_disposed()
    {
        using var value = new mp.SharedValue<int>(1);
        using var array = new mp.SharedArray<int>(3);
        Assert.Throws<SerializationException>(() => mp.Serialization.BinarySerializer.Default.Serialize(value));
        Assert.Throws<SerializationException>(() => mp.Serialization.BinarySerializer.Default.Serialize(array));

        var gone = new mp.SharedValue<int>(1);
        gone.Dispose();
        Assert.Throws<ObjectDisposedException>(() => gone.Value);
        Assert.Throws<ObjectDisposedException>(() => gone.Increment());
        var goneArray = new mp.SharedArray<int>(2);
        goneArray.Dispose();
        Assert.Throws<ObjectDisposedException>(() => goneArray[0]);
    }

    [Fact]
    public void An_array_is_zero_filled_or_copied_and_indexes_like_an_array()
    {
        using var zeros = new mp.SharedArray<double>(5);
        Assert.Equal(5, zeros.Length);
        Assert.All(zeros.ToArray(), x => Assert.Equal(0.0, x));
        using var numbers = new mp.SharedArray<int>([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
        Assert.Equal(10, numbers.Length);
        Assert.Equal(7, numbers[7]);
        numbers[7] = 70;
        numbers[8] += 1;
        Assert.Equal([70, 9], numbers.AsSpan(7, 2).ToArray());
        Assert.Throws<IndexOutOfRangeException>(() => numbers[10]);
        Assert.Throws<IndexOutOfRangeException>(() => numbers[-1]);
        Assert.Throws<IndexOutOfRangeException>(() => numbers[^11]);
        Assert.Equal(9, numbers[^1]);

        Assert.Equal([2, 3, 4], numbers[2..5]);
        numbers[2..5] = [20, 30, 40];
        Assert.Equal([20, 30, 40], numbers.AsSpan(2..5).ToArray());
        Assert.Throws<ArgumentException>(() => numbers[2..5] = [1]);
        Assert.Throws<ArgumentOutOfRangeException>(() => numbers[5..11]);

        var copy = new int[10];
        numbers.CopyTo(copy);
        Assert.Equal(numbers.ToArray(), copy);
        Assert.Throws<ArgumentException>(() => numbers.CopyTo(new int[9]));
        numbers.CopyFrom([100, 101], 8);
        Assert.Equal([100, 101], numbers[8..]);
        Assert.Throws<ArgumentException>(() => numbers.CopyFrom(new int[11]));
        Assert.Throws<ArgumentException>(() => numbers.CopyFrom([1, 2], 9));
        Assert.Equal(numbers.ToArray(), numbers.ToList());
        Assert.Throws<ArgumentOutOfRangeException>(() => new mp.SharedArray<int>(-1));
        Assert.StartsWith("SharedArray<Int32>[10](0, 1, 20", numbers.ToString());

        using var empty = new mp.SharedArray<long>(0);
        Assert.Equal(0, empty.Length);
        Assert.Empty(empty.ToArray());
    }

    [Fact]
    public void A_child_fills_an_array_in_place_and_the_parent_sees_it_without_copying()
    {
        using var squares = new mp.SharedArray<long>(1000, locked: false);
        using var empty = new mp.SharedArray<byte>(0);
        Assert.Throws<InvalidOperationException>(squares.GetLock);
        var child = new mp.Process<mp.SharedArray<long>>(array =>
        {
            for (int i = 0; i < array.Length; i++)
            {
                array[i] = (long)i * i;
            }

            if (empty.Length != 0)
            {
                throw new InvalidOperationException("the empty array grew");
            }
        }, squares);
        Bounded.Run(child);
        Assert.Equal(0, child.ExitCode);
        Assert.Equal(Enumerable.Range(0, 1000).Select(i => (long)i * i), squares.ToArray());
    }

    /// <summary>
    /// Starts the workers and lets them go only once all are running, so their loops overlap (a child started from the
    /// spare could otherwise finish before the next one exists, and a missing lock would go unnoticed).
    /// </summary>
    private static void StartTogether(mp.Process[] workers, mp.SharedValue<int> ready, mp.Lock gate)
    {
        gate.Acquire();
        foreach (mp.Process worker in workers)
        {
            worker.Start();
        }

        int* count = (int*)ready.Region.Pointer;
        Deadline deadline = Deadline.After(Bounded.Long);
        int seen;
        while ((seen = Volatile.Read(ref *count)) < workers.Length)
        {
            Assert.True(Futex.Wait(count, seen, deadline), "the workers did not all start");
        }

        gate.Release();
    }

    /// <summary>In a worker: says it is running, then waits for the parent's go.</summary>
    private static void WaitForTheOthers(mp.SharedValue<int> ready, mp.Lock gate)
    {
        ready.Increment();
        Futex.WakeAll((int*)ready.Region.Pointer);
        gate.Acquire();
        gate.Release();
    }
}
