using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// W data-parallel ranks as threads of the test process, each with its own store connection and
/// <see cref="ProcessGroup"/> over loopback Gloo, as W processes would have (rank 0 serves the store on a port the
/// kernel picks). Each rank's body gets its group; every rank's result or exception is collected, and the whole run
/// is bounded so a bug cannot hang the suite.
/// </summary>
internal static class LoopbackRanks
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(240);

    public static ProcessGroupOptions Options(TimeSpan timeout) => new()
    {
        Timeout = timeout,
        GlooHostName = "127.0.0.1",
        HeartbeatInterval = TimeSpan.FromMilliseconds(250),
    };

    /// <summary>Runs <paramref name="body"/> on every rank; returns each rank's result, or throws naming the first rank that failed.</summary>
    public static T[] Run<T>(int worldSize, Func<ProcessGroup, T> body, TimeSpan? timeout = null)
    {
        ProcessGroupOptions options = Options(timeout ?? TimeSpan.FromSeconds(60));
        using TcpStore server = TcpStore.Serve("127.0.0.1", 0, worldSize, options.Timeout);
        var results = new T[worldSize];
        var failures = new Exception?[worldSize];
        var threads = Enumerable.Range(0, worldSize).Select(rank => new Thread(() =>
        {
            try
            {
                TcpStore store = rank == 0 ? server : TcpStore.Connect("127.0.0.1", server.Port, worldSize, options.Timeout);
                using ProcessGroup group = ProcessGroup.Join(store, rank, worldSize, options, ownsStore: rank != 0);
                results[rank] = body(group);
                group.Barrier(); // no rank leaves while a peer may still read from it
            }
            catch (Exception e)
            {
                failures[rank] = e;
            }
        }) { IsBackground = true, Name = $"rank {rank}" }).ToList();
        threads.ForEach(t => t.Start());
        foreach (Thread t in threads)
            Assert.True(t.Join(s_bound), $"{t.Name} did not finish within {s_bound}");
        for (int rank = 0; rank < worldSize; rank++)
            if (failures[rank] is Exception e)
                throw new Xunit.Sdk.XunitException($"rank {rank} failed: {e}");
        return results;
    }
}
