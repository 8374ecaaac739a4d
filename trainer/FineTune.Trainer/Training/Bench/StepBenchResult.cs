namespace FineTune.Trainer.Training.Bench;

/// <summary>One configuration's figures in `finetune bench step` (median over the timed steps).</summary>
/// <param name="Name">"in-memory, no recompute" (plain libtorch eager: the baseline), "in-memory", "offloaded", ...</param>
/// <param name="Traffic">NVMe bytes of the median step by kind.</param>
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
    FineTune.Trainer.Planning.NvmeTraffic Traffic,
    long PoolReservedByteCount,
    long PeakResidentByteCount,
    long ResidentBeforeByteCount,
    IReadOnlyList<double> Losses,
    IReadOnlyList<double> Norms,
    string StateLocation,
    string ActivationLocation,
    string WeightLocation,
    string UpdateStrategy)
{
    /// <summary>The optimizer's share of the step on the step's thread (with overlap: only what forward/backward did not hide).</summary>
    public double OptimizerShare => StepSeconds > 0 ? OptimizerSeconds / StepSeconds : 0;
}

/// <summary>Everything `finetune bench step` measured in one run.</summary>
/// <param name="ModelFlopsPerStep">6 x matmul parameters x tokens + attention (12 x layers x T x C per token): the FLOPs MFU counts.</param>
/// <param name="GemmFlopsPerSecond">A GEMM of the model's MLP shape on all cores in the model's dtype, measured in the same run: the CPU's limit.</param>
public sealed record StepBenchResult(
    long ParameterCount,
    long TokensPerStep,
    double ReadBytesPerSecond,
    double WriteBytesPerSecond,
    string BandwidthEngine,
    double ModelFlopsPerStep,
    double GemmFlopsPerSecond,
    IReadOnlyList<StepBenchRun> Runs,
    bool PeakResetWorked)
{
    public const string Eager = "in-memory, no recompute";
    public const string InMemoryName = "in-memory";
    public const string OffloadedName = "offloaded";
    public const string NoOverlapName = "offloaded, no overlap";
    public const string KeptName = "offloaded, layers kept";
    public const string SpilledName = "offloaded, graphs on nvme";
    public const string ClipName = "offloaded, clip";
    public const string ClipNoOverlapName = "offloaded, clip, no overlap";
    public const string ParamsName = "offloaded, params nvme";

    public StepBenchRun Run(string name) => Runs.Single(r => r.Name == name);

    public StepBenchRun InMemory => Run(InMemoryName);

    public StepBenchRun Offloaded => Run(OffloadedName);

    public StepBenchRun OffloadedNoOverlap => Run(NoOverlapName);

    /// <summary>Offloaded states with every layer's graph kept to backward (training.recompute: never): no recompute, as eager.</summary>
    public StepBenchRun OffloadedKept => Run(KeptName);

    /// <summary>
    /// Offloaded states with every layer's graph kept and its saved tensors on NVMe (training.recompute: spill): no
    /// recompute, activations on the drive.
    /// </summary>
    public StepBenchRun OffloadedSpilled => Run(SpilledName);

    public StepBenchRun InMemoryNoRecompute => Run(Eager);

    public StepBenchRun ParametersOnNvme => Run(ParamsName);

    /// <summary>Tokens/s of <paramref name="run"/> over plain libtorch eager in memory on the same cores (issue target for offloaded: at least 0.9).</summary>
    public double OverEager(StepBenchRun run) => run.TokensPerSecond / InMemoryNoRecompute.TokensPerSecond;

    /// <summary>Model FLOPs per second of <paramref name="run"/> over the GEMM rate: the CPU's MFU.</summary>
    public double Mfu(StepBenchRun run) => ModelFlopsPerStep / run.StepSeconds / GemmFlopsPerSecond;

    /// <summary>Offloaded tokens/s over in-memory (the same schedule in memory) tokens/s.</summary>
    public double OffloadedOverInMemory => Offloaded.TokensPerSecond / InMemory.TokensPerSecond;

    /// <summary>Offloaded tokens/s over the plain baseline's (no recompute: the cost of checkpointing shows here too).</summary>
    public double OffloadedOverNoRecompute => OverEager(Offloaded);

    /// <summary>Step time without overlap over step time with it (above 1: the overlap helps).</summary>
    public double OverlapGain => OffloadedNoOverlap.StepSeconds / Offloaded.StepSeconds;

    /// <summary>With clipping on: step time of the synchronous update over the one under the next forward.</summary>
    public double ClipOverlapGain => Run(ClipNoOverlapName).StepSeconds / Run(ClipName).StepSeconds;

    /// <summary>Parameter offload's tokens/s over the offloaded run's with resident weights (the cost of streaming the weights).</summary>
    public double ParametersOnNvmeOverOffloaded => ParametersOnNvme.TokensPerSecond / Offloaded.TokensPerSecond;

    /// <summary>Largest relative loss difference between offloaded and in-memory over the same steps.</summary>
    public double MaxLossRelativeDifference => MaxRelativeDifference(Offloaded.Losses, InMemory.Losses);

    /// <summary>Largest relative loss difference between parameter offload and the offloaded run (the same arithmetic: 0).</summary>
    public double ParametersOnNvmeLossDifference => MaxRelativeDifference(ParametersOnNvme.Losses, Offloaded.Losses);

    /// <summary>True when keeping every layer's graph gave the recomputing run's losses and norms bit for bit.</summary>
    public bool KeptIsExact => OffloadedKept.Losses.SequenceEqual(Offloaded.Losses) && OffloadedKept.Norms.SequenceEqual(Offloaded.Norms);

    /// <summary>True when the spilled graphs gave the graphs kept in memory's losses and norms bit for bit.</summary>
    public bool SpilledIsExact => OffloadedSpilled.Losses.SequenceEqual(OffloadedKept.Losses) && OffloadedSpilled.Norms.SequenceEqual(OffloadedKept.Norms);

    /// <summary>True when the clipped update under the next forward gave the synchronous step's losses and norms bit for bit.</summary>
    public bool ClipOverlapIsExact => Run(ClipName).Losses.SequenceEqual(Run(ClipNoOverlapName).Losses) && Run(ClipName).Norms.SequenceEqual(Run(ClipNoOverlapName).Norms);

    private static double MaxRelativeDifference(IReadOnlyList<double> a, IReadOnlyList<double> b) =>
        a.Zip(b, (x, y) => Math.Abs(x - y) / Math.Abs(y)).DefaultIfEmpty(0).Max();
}
