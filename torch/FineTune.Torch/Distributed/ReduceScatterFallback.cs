namespace FineTune.Torch.Distributed;

/// <summary>
/// How <see cref="ProcessGroup.ReduceScatter"/> works on a backend without a native reduce-scatter (Gloo in
/// libtorch 1.13 has none). Both give every rank exactly the reduction of its shard; they differ in bytes moved.
/// `finetune bench collectives` times both against the all-reduce they are built from.
/// </summary>
public enum ReduceScatterFallback
{
    /// <summary>One all-reduce of the whole input (ring: 2 (W-1)/W of its bytes sent per rank), then this rank's
    /// shard copied out: twice the traffic of a true reduce-scatter, one call.</summary>
    AllReduceThenCopy = 0,

    /// <summary>W reduces, shard r to rank r (Gloo's reduce is a ring reduce-scatter then a gather to the root):
    /// close to reduce-scatter traffic, W calls.</summary>
    ReducePerShard = 1,

    /// <summary>One all-to-all (each rank sends shard s to rank s: exactly reduce-scatter's (W-1)/W of the bytes)
    /// into a scratch buffer of the input's size, then this rank sums the W pieces it received, in rank order.
    /// Sum only; other reductions use <see cref="AllReduceThenCopy"/>.</summary>
    AllToAllThenSum = 2,
}
