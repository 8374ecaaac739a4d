namespace FineTune.Trainer.Training.Bench;

/// <summary>One configuration's figures in `finetune bench step` (median over the timed steps).</summary>
/// <param name="Name">"in-memory", "offloaded", "offloaded, no overlap", "in-memory, no recompute", "offloaded, params nvme".</param>
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
    string ActivationLocation,
    string WeightLocation);

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
    StepBenchRun ParametersOnNvme,
    bool PeakResetWorked)
{
    /// <summary>Offloaded tokens/s over in-memory tokens/s (issue target: at least 0.8 when the disk keeps up).</summary>
    public double OffloadedOverInMemory => Offloaded.TokensPerSecond / InMemory.TokensPerSecond;

    /// <summary>Offloaded tokens/s over the plain baseline's (no recompute: the cost of checkpointing shows here too).</summary>
    public double OffloadedOverNoRecompute => Offloaded.TokensPerSecond / InMemoryNoRecompute.TokensPerSecond;

    /// <summary>Step time without overlap over step time with it (above 1: the overlap helps).</summary>
    public double OverlapGain => OffloadedNoOverlap.StepSeconds / Offloaded.StepSeconds;

    /// <summary>Parameter offload's tokens/s over the offloaded run's with resident weights (the cost of streaming the weights).</summary>
    public double ParametersOnNvmeOverOffloaded => ParametersOnNvme.TokensPerSecond / Offloaded.TokensPerSecond;

    /// <summary>Largest relative loss difference between offloaded and in-memory over the same steps.</summary>
    public double MaxLossRelativeDifference => MaxRelativeDifference(Offloaded.Losses, InMemory.Losses);

    /// <summary>Largest relative loss difference between parameter offload and the offloaded run (the same arithmetic: 0).</summary>
    public double ParametersOnNvmeLossDifference => MaxRelativeDifference(ParametersOnNvme.Losses, Offloaded.Losses);

    private static double MaxRelativeDifference(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        a.Zip(b, (x, y) => Math.Abs(x - y) / Math.Abs(y)).DefaultIfEmpty(0).Max();
}
