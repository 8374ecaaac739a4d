namespace FineTune.Torch.Distributed;

/// <summary>How a <see cref="ProcessGroup"/> is built and how long its calls may wait.</summary>
public sealed record ProcessGroupOptions
{
    /// <summary>torch.distributed waits 30 minutes by default; a run that hangs should say so much sooner, and a
    /// collective over host memory that takes 5 minutes means something is wrong.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(5);

    public DistributedBackend Backend { get; init; } = DistributedBackend.Gloo;

    /// <summary>Bound on joining (every rank must arrive within it) and on each collective.</summary>
    public TimeSpan Timeout { get; init; } = DefaultTimeout;

    /// <summary>Address Gloo binds on this rank; null: the address of this machine's hostname (loopback when it
    /// does not resolve). Local runs use 127.0.0.1.</summary>
    public string? GlooHostName { get; init; }

    /// <summary>Gloo's worker threads per group; 0 keeps libtorch's default (2).</summary>
    public int GlooThreads { get; init; }

    /// <summary>Reduce-scatter on backends without a native one (Gloo); see <see cref="ReduceScatterFallback"/>.
    /// The default was the fastest of the three on 2 loopback ranks in `finetune bench collectives` (64 MiB: 31-51 ms
    /// against 53-65 ms for all-reduce + copy in 3 runs of 4, on a shared 2-core machine); give it a scratch buffer
    /// from the pool, or it allocates one of the input's size per call.</summary>
    public ReduceScatterFallback ReduceScatterFallback { get; init; } = ReduceScatterFallback.AllToAllThenSum;

    /// <summary>All-gather on Gloo; see <see cref="AllGatherMethod"/>. The default was 5-20x faster than Gloo's
    /// allgather on 2 loopback ranks in `finetune bench collectives` (64 MiB: 17-38 ms against 86-350 ms).</summary>
    public AllGatherMethod AllGatherMethod { get; init; } = AllGatherMethod.BroadcastPerShard;

    /// <summary>How often each rank bumps its heartbeat counter in the store. A failed collective waits three
    /// intervals and names the ranks whose counters did not move.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Prefix of this group's keys in the store, so several groups can share one store.</summary>
    public string KeyPrefix { get; init; } = "finetune/group0/";
}
