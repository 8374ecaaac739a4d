using System.Diagnostics;

namespace FineTune.Torch.Distributed;

/// <summary>
/// The join step before a native group is built: each rank sets KeyPrefix + "joined/" + rank, then polls for the
/// others' marks until the timeout. Gloo's own rendezvous would wait as long but only report a store timeout; the
/// marks tell which ranks never came, and that is what the user needs to fix.
/// </summary>
internal static class GroupJoin
{
    private static readonly TimeSpan s_pollInterval = TimeSpan.FromMilliseconds(20);

    public static void WaitForEveryRank(TcpStore store, string prefix, int rank, int worldSize, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            store.Set(prefix + "joined/" + rank, "1");
            var missing = Enumerable.Range(0, worldSize).ToList();
            while (true)
            {
                missing.RemoveAll(r => store.Contains(prefix + "joined/" + r));
                if (missing.Count == 0)
                    return;
                if (clock.Elapsed >= timeout)
                    throw new DistributedException(
                        $"rank {rank} of {worldSize}: {PeerWatch.RankList(missing)} did not join the group at {store.Host}:{store.Port} within {timeout.TotalSeconds:0.#} s; start every rank with the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, or raise the timeout.",
                        rank, "join", missing);
                Thread.Sleep(s_pollInterval);
            }
        }
        catch (TorchException e)
        {
            throw new DistributedException(
                $"rank {rank} of {worldSize}: the rendezvous store at {store.Host}:{store.Port} stopped answering while ranks joined ({e.Message.TrimEnd('.')}); rank 0 serves it, check that it is running.",
                rank, "join", [0], e);
        }
    }
}
