using mp = Multiprocessing;

namespace Multiprocessing.Tests;

/// <summary>A shared type with task-returning members, called through a manager.</summary>
public interface IAsyncCounter
{
    /// <summary>Adds <paramref name="amount"/> and returns the new total.</summary>
    Task<long> AddAsync(long amount);

    /// <summary>The total.</summary>
    ValueTask<long> TotalAsync();

    /// <summary>Waits in the server (blocking its thread) until <see cref="OpenAsync"/> is called on any counter.</summary>
    Task<bool> WaitOpenAsync();

    /// <summary>Opens what <see cref="WaitOpenAsync"/> waits for.</summary>
    Task OpenAsync();

    /// <summary>Describes <paramref name="value"/> (which may not be able to cross).</summary>
    Task<string> DescribeAsync(object? value);

    /// <summary>Returns something that cannot cross back.</summary>
    Task<object> UnsendableAsync();
}

/// <summary>The server-side counter.</summary>
public sealed class AsyncCounter : IAsyncCounter
{
    private static readonly ManualResetEventSlim s_open = new();
    private long _total;

    /// <inheritdoc/>
    public Task<long> AddAsync(long amount) => Task.FromResult(_total += amount);

    /// <inheritdoc/>
    public ValueTask<long> TotalAsync() => new(_total);

    /// <inheritdoc/>
    public Task<bool> WaitOpenAsync() => Task.FromResult(s_open.Wait(TimeSpan.FromSeconds(60)));

    /// <inheritdoc/>
    public Task<string> DescribeAsync(object? value) => Task.FromResult(value?.ToString() ?? "null");

    /// <inheritdoc/>
    public Task<object> UnsendableAsync() => Task.FromResult<object>(new MemoryStream());

    /// <inheritdoc/>
    public Task OpenAsync()
    {
        s_open.Set();
        return Task.CompletedTask;
    }
}

/// <summary>Task-returning proxy members: awaited from many tasks at once, and never stuck behind a call that waits.</summary>
public sealed class ManagerAsyncTests
{
    [Fact]
    public async Task Sixteen_tasks_awaiting_proxy_calls_at_once_all_get_their_answers()
    {
        using var manager = new mp.Manager();
        manager.Register<IAsyncCounter>(() => new AsyncCounter());
        IAsyncCounter counter = manager.Create<IAsyncCounter>();
        Task<long[]>[] tasks = [.. Enumerable.Range(0, 16).Select(async _ =>
        {
            long[] seen = new long[200];
            for (int i = 0; i < seen.Length; i++)
            {
                seen[i] = await counter.AddAsync(1);
            }

            return seen;
        })];
        long[][] results = await Task.WhenAll(tasks).WaitAsync(Bounded.Long);
        Assert.Equal(3200, await counter.TotalAsync().AsTask().WaitAsync(Bounded.Long));
        Assert.Equal(Enumerable.Range(1, 3200).Select(i => (long)i), results.SelectMany(r => r).Order()); // each call atomic, none lost
    }

    [Fact]
    public async Task A_call_waiting_in_the_server_for_a_later_call_from_the_same_process_does_not_block_it()
    {
        using var manager = new mp.Manager();
        manager.Register<IAsyncCounter>(() => new AsyncCounter());
        IAsyncCounter waiter = manager.Create<IAsyncCounter>();
        IAsyncCounter opener = manager.Create<IAsyncCounter>();
        Task<bool> waiting = waiter.WaitOpenAsync();
        await opener.OpenAsync().WaitAsync(Bounded.Long); // queued behind the waiting call; another worker must take it
        Assert.True(await waiting.WaitAsync(Bounded.Long));
        Assert.Equal(2, await opener.AddAsync(2).WaitAsync(Bounded.Long));
    }

    [Fact]
    public async Task A_call_whose_argument_or_result_cannot_cross_fails_alone_among_calls_sent_together()
    {
        using var manager = new mp.Manager();
        manager.Register<IAsyncCounter>(() => new AsyncCounter());
        IAsyncCounter counter = manager.Create<IAsyncCounter>();
        for (int round = 0; round < 20; round++)
        {
            // Queued together without awaiting, so a worker takes several of them in one batch.
            using var stream = new MemoryStream();
            Task<long> before = counter.AddAsync(1);
            Task<string> badArgument = counter.DescribeAsync(stream);
            Task<object> badResult = counter.UnsendableAsync();
            Task<string> good = counter.DescribeAsync(42);
            Task<long> after = counter.AddAsync(1);
            await Assert.ThrowsAsync<System.Runtime.Serialization.SerializationException>(() => badArgument.WaitAsync(Bounded.Long));
            var remote = await Assert.ThrowsAsync<mp.RemoteException>(() => badResult.WaitAsync(Bounded.Long));
            Assert.Equal(typeof(System.Runtime.Serialization.SerializationException).FullName, remote.RemoteType);
            Assert.Equal("42", await good.WaitAsync(Bounded.Long));
            // Calls in flight together have no order (a second worker may take one), but each counts once.
            Assert.Equal([(2 * round) + 1, (2 * round) + 2], new[] { await before.WaitAsync(Bounded.Long), await after.WaitAsync(Bounded.Long) }.Order());
        }
    }
}
