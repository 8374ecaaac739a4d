namespace FineTune.Trainer.Training.Bench;

/// <summary>One configuration's figures in `finetune bench step` (median over the timed steps).</summary>
/// <param name="Name">"in-memory", "offloaded", "offloaded, no overlap", "in-memory, no recompute".</param>
/// <param name="PeakResidentByteCount">Process peak RSS while this configuration ran alone through its warm-up steps (VmHWM reset before it when the kernel allows).</param>
/// <param name="ResidentBeforeByteCount">Process RSS when the configuration started (what earlier runs left behind).</param>
public sealed record StepBenchRun(
    string Name,
    double StepSeconds,
    double TokensPerSecond,
    double ComputeSeconds,
    double ReadWaitSeconds,
    double WriteWaitSeconds,
    double OptimizerSeconds,
    long BytesReadPerStep,
    long BytesWrittenPerStep,
    long PoolReservedByteCount,
    long PeakResidentByteCount,
    long ResidentBeforeByteCount,
    IReadOnlyList<double> Losses,
    string StateLocation,
    string ActivationLocation);

/// <summary>Everything `finetune bench step` measured in one run.</summary>
public sealed record StepBenchResult(
    long ParameterCount,
    long TokensPerStep,
    double ReadBytesPerSecond,
    double WriteBytesPerSecond,
    string BandwidthEngine,
    StepBenchRun InMemory,
    StepBenchRun Offloaded,
    StepBenchRun OffloadedNoOverlap,
    StepBenchRun InMemoryNoRecompute,
    bool PeakResetWorked)
{
    /// <summary>Offloaded tokens/s over in-memory tokens/s (issue target: at least 0.8 when the disk keeps up).</summary>
    public double OffloadedOverInMemory => Offloaded.TokensPerSecond / InMemory.TokensPerSecond;

    /// <summary>Offloaded tokens/s over the plain baseline's (no recompute: the cost of checkpointing shows here too).</summary>
    public double OffloadedOverNoRecompute => Offloaded.TokensPerSecond / InMemoryNoRecompute.TokensPerSecond;

    /// <summary>Step time without overlap over step time with it (above 1: the overlap helps).</summary>
    public double OverlapGain => OffloadedNoOverlap.StepSeconds / Offloaded.StepSeconds;

    /// <summary>Largest relative loss difference between offloaded and in-memory over the same steps.</summary>
    public double MaxLossRelativeDifference =>
        Offloaded.Losses.Zip(InMemory.Losses, (a, b) => Math.Abs(a - b) / Math.Abs(b)).DefaultIfEmpty(0).Max();
}
