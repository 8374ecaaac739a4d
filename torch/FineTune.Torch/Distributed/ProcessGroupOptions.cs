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
    /// The default is the faster of the two on loopback in `finetune bench collectives`.</summary>
    public ReduceScatterFallback ReduceScatterFallback { get; init; } = ReduceScatterFallback.AllReduceThenCopy;

    /// <summary>All-gather on Gloo; see <see cref="AllGatherMethod"/>. The default is the faster of the two on
    /// loopback in `finetune bench collectives`.</summary>
    public AllGatherMethod AllGatherMethod { get; init; } = AllGatherMethod.BroadcastPerShard;

    /// <summary>How often each rank bumps its heartbeat counter in the store. A failed collective waits three
    /// intervals and names the ranks whose counters did not move.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Prefix of this group's keys in the store, so several groups can share one store.</summary>
    public string KeyPrefix { get; init; } = "finetune/group0/";
}
