using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>
/// Runs W ranks as threads of this test process, each with its own store connection and its own
/// <see cref="ProcessGroup"/> over loopback Gloo, exactly as W processes would (rank 0 serves the store on a port
/// the kernel picks). Every rank's exception is collected; the whole run is bounded so a bug cannot hang the suite.
/// </summary>
internal static class LoopbackRanks
{
    private static readonly TimeSpan s_bound = TimeSpan.FromSeconds(90);

    /// <summary>Runs body on every rank; returns each rank's exception (null when it finished).</summary>
    public static Exception?[] Run(int worldSize, ProcessGroupOptions options, Action<ProcessGroup> body)
    {
        using TcpStore server = TcpStore.Serve("127.0.0.1", 0, worldSize, options.Timeout);
        int port = server.Port;
        var failures = new Exception?[worldSize];
        var threads = Enumerable.Range(0, worldSize).Select(rank => new Thread(() =>
        {
            try
            {
                TcpStore store = rank == 0 ? server : TcpStore.Connect("127.0.0.1", port, worldSize, options.Timeout);
                using ProcessGroup group = ProcessGroup.Join(store, rank, worldSize, options, ownsStore: rank != 0);
                body(group);
            }
            catch (Exception e)
            {
                failures[rank] = e;
            }
        }) { IsBackground = true, Name = $"rank {rank}" }).ToList();
        threads.ForEach(t => t.Start());
        foreach (Thread t in threads)
            Assert.True(t.Join(s_bound), $"{t.Name} did not finish within {s_bound}: a collective is not bounded by its timeout");
        return failures;
    }

    /// <summary>As <see cref="Run"/>, and every rank must finish without an exception.</summary>
    public static void RunAll(int worldSize, Action<ProcessGroup> body, ProcessGroupOptions? options = null)
    {
        Exception?[] failures = Run(worldSize, options ?? Options(TimeSpan.FromSeconds(30)), body);
        for (int rank = 0; rank < worldSize; rank++)
            if (failures[rank] is Exception e)
                throw new Xunit.Sdk.XunitException($"rank {rank} failed: {e}");
    }

    public static ProcessGroupOptions Options(TimeSpan timeout) => new()
    {
        Timeout = timeout,
        GlooHostName = "127.0.0.1",
        HeartbeatInterval = TimeSpan.FromMilliseconds(250),
    };
}
