namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// What `finetune bench step --nproc N` measured, as rank 0 reports it. Per rank (in rank order): the median step's
/// seconds and the tokens it trained (its shard), the collectives' seconds in that step by kind, the optimizer-state
/// bytes it holds and its VmHWM. In the same run: a c10d all-reduce of the whole fp32 gradient (what PyTorch DDP
/// runs every step) with its bus bandwidth, and plain libtorch eager in memory on all cores training the whole global
/// batch in one process (what a user would run instead on this machine). The step's own collective seconds include
/// waiting for the slower rank to arrive; the same stripe collectives timed alone (ranks starting together) are what
/// the transfers cost.
/// <param name="WeightByteRatio">Bytes of a weight over 4 (1 for fp32, 0.5 for bf16).</param>
/// </summary>
public sealed record DataParallelStepBenchResult(
    int WorldSize,
    long ParameterCount,
    IReadOnlyList<double> StepSeconds,
    IReadOnlyList<double> TokensPerStep,
    IReadOnlyList<double> ReduceScatterSeconds,
    IReadOnlyList<double> AllGatherSeconds,
    IReadOnlyList<double> AllReduceSeconds,
    IReadOnlyList<double> StateByteCounts,
    IReadOnlyList<double> PeakResidentByteCounts,
    long SingleRankStateByteCount,
    int StripeCount,
    long StripeByteCount,
    double GradientAllReduceSeconds,
    double GradientAllReduceBusBytesPerSecond,
    double ReduceScatterAloneSeconds,
    double AllGatherAloneSeconds,
    double EagerTokensPerSecond,
    int EagerThreads,
    double WeightByteRatio,
    IReadOnlyList<double> Losses)
{
    /// <summary>Trained tokens per second of each rank: its shard's tokens over its median step.</summary>
    public IReadOnlyList<double> TokensPerSecond => StepSeconds.Zip(TokensPerStep, (s, t) => s > 0 ? t / s : 0).ToList();

    /// <summary>The ranks together: the global batch's tokens over the slowest rank's median step.</summary>
    public double TotalTokensPerSecond => TokensPerStep.Sum() / StepSeconds.Max();

    /// <summary>Rank 0's seconds in collectives per step.</summary>
    public double CollectiveSeconds => ReduceScatterSeconds[0] + AllGatherSeconds[0] + AllReduceSeconds[0];

    /// <summary>
    /// Bus bandwidth of the aligned reduce-scatters plus all-gathers of one step: (W-1)/W of each stripe buffer on the
    /// wire, the gradients as fp32 and the weights in their dtype (<paramref name="WeightByteRatio"/> of fp32).
    /// </summary>
    public double StripeBusBytesPerSecond => ReduceScatterAloneSeconds + AllGatherAloneSeconds > 0
        ? (WorldSize - 1.0) / WorldSize * StripeCount * StripeByteCount * (1 + WeightByteRatio) / (ReduceScatterAloneSeconds + AllGatherAloneSeconds) : 0;
}
