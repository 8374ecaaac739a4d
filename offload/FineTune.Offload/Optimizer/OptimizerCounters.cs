namespace FineTune.Offload.Optimizer;

/// <summary>Cumulative counters of a <see cref="PartitionedOptimizer"/>, for logs and TensorBoard.</summary>
public sealed class OptimizerCounters
{
    public long BytesRead { get; internal set; }

    public long BytesWritten { get; internal set; }

    /// <summary>Seconds the step waited for a sub-group's read to finish (pipeline stall on reads).</summary>
    public double ReadWaitSeconds { get; internal set; }

    /// <summary>Seconds the step waited for a write to free a buffer (stall on writes, final drain included).</summary>
    public double WriteWaitSeconds { get; internal set; }

    /// <summary>Seconds in the fused AdamW pass (and the baseline's fp32 gradient staging).</summary>
    public double UpdateSeconds { get; internal set; }

    /// <summary>Seconds in the streaming gradient-norm / overflow pass.</summary>
    public double NormSeconds { get; internal set; }

    public long SkippedSteps { get; internal set; }

    /// <summary>Process peak resident set (VmHWM) read after the last step.</summary>
    public long PeakResidentByteCount { get; internal set; }

    public long Steps { get; internal set; }

    public OptimizerCounters Snapshot() => (OptimizerCounters)MemberwiseClone();
}
