namespace FineTune.Torch.Distributed;

/// <summary>
/// How <see cref="ProcessGroup.AllGather"/> works over Gloo (NCCL always uses its native all-gather).
/// `finetune bench collectives` times both.
/// </summary>
public enum AllGatherMethod
{
    /// <summary>W broadcasts, shard r from rank r straight into the output: no staging copies, and each
    /// broadcast is a plain send on Gloo; what ZeRO does when each owner sends its updated partition.</summary>
    BroadcastPerShard = 0,

    /// <summary>Gloo's own allgather: it stages the input and the whole output in buffers of its own and copies
    /// each rank's part out afterwards.</summary>
    GlooAllGather = 1,
}
