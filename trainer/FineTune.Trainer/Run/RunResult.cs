namespace FineTune.Trainer.Runs;

/// <summary>What a finished (or interrupted) <see cref="TrainingRun"/> reports in its summary.</summary>
public sealed record RunResult
{
    /// <summary>Optimizer steps completed in all (resumed steps included).</summary>
    public required long Step { get; init; }

    public required long TotalSteps { get; init; }

    /// <summary>The step this session started from (0 for a fresh run).</summary>
    public required long StartStep { get; init; }

    /// <summary>True when Ctrl-C / SIGTERM stopped the run early (a checkpoint was saved first).</summary>
    public required bool Interrupted { get; init; }

    /// <summary>Loss of the first step in metrics.jsonl (step 1 of the run, even after resumes) and of the last.</summary>
    public double? FirstLoss { get; init; }

    public double? LastLoss { get; init; }

    /// <summary>Trained (labelled, loss-bearing) tokens per second of this session (steps' wall time only).</summary>
    public required double TokensPerSecond { get; init; }

    /// <summary>All token positions run through the model per second (B x T x accumulation per step), prompts and padding included.</summary>
    public required double PositionsPerSecond { get; init; }

    /// <summary>Process peak resident set (VmHWM) at the end.</summary>
    public required long PeakResidentByteCount { get; init; }

    /// <summary>Data parallel: every rank's VmHWM at the end, in rank order; empty for one process.</summary>
    public IReadOnlyList<long> RankPeakResidentByteCounts { get; init; } = [];

    /// <summary>The plan's predicted host peak (<see cref="RunPlan.HostPeakByteCount"/>), to compare with the measured one.</summary>
    public required long PredictedHostPeakByteCount { get; init; }

    /// <summary>Consumed gradients' peak bytes alive and the plan's bound on them (<see cref="IRunEngine.GradientMemory"/>).</summary>
    public (long Peak, long Bound)? GradientMemory { get; init; }

    /// <summary>offload.host_gb in bytes; null when unlimited.</summary>
    public long? HostBudgetByteCount { get; init; }

    /// <summary>Host bytes reserved by the engine's pools (its plan).</summary>
    public required long PoolReservedByteCount { get; init; }

    /// <summary>How the CPU side computed: libtorch threads, the OpenMP wait policy and the BLAS (fixed per machine, recorded for comparisons).</summary>
    public string? Compute { get; init; }

    public double? AccuracyBefore { get; init; }

    public double? AccuracyAfter { get; init; }

    public double? EvalLoss { get; init; }

    /// <summary>Train loss of every step so far (resumed steps included), for the summary's sparkline.</summary>
    public IReadOnlyList<double> LossCurve { get; init; } = [];

    /// <summary>Eval loss of every evaluation so far.</summary>
    public IReadOnlyList<double> EvalLossCurve { get; init; } = [];

    /// <summary>The loss/learning-rate PNG written into the run folder; null when it could not be drawn (<see cref="PlotError"/>).</summary>
    public string? PlotFile { get; init; }

    public string? PlotError { get; init; }

    public string? TensorBoardFile { get; init; }

    public required string MetricsFile { get; init; }

    public string? LastCheckpoint { get; init; }

    public required string CheckpointDirectory { get; init; }

    /// <summary>This session's steps: mean time split and NVMe bytes per step by kind.</summary>
    public RunStepTotals? Steps { get; init; }

    /// <summary>Parameters of the model (bytes per parameter per step in the summary).</summary>
    public long ParameterCount { get; init; }

    /// <summary>The plan's step time and NVMe traffic (full fine-tuning), printed beside the measured ones.</summary>
    public double? PlannedStepSeconds { get; init; }

    public FineTune.Trainer.Planning.NvmeTraffic? PlannedTraffic { get; init; }

    /// <summary>The drive's rate for reads and writes at once, measured in this run (billion-scale steps only).</summary>
    public RunIoFloor? IoFloor { get; init; }
}
