namespace FineTune.Trainer.Training;

/// <summary>
/// What one <see cref="TrainingEngine.Step(IReadOnlyList{FineTune.Trainer.Data.Batch})"/> did. Seconds are wall time
/// of the calling thread: <see cref="ComputeSeconds"/> + the waits + <see cref="OptimizerSeconds"/> + <see cref="OptimizerWaitSeconds"/> = <see cref="Seconds"/>.
/// Bytes count activation checkpoints, weights and optimizer states moved to and from the drive during this step.
/// </summary>
public sealed record StepMetrics
{
    /// <summary>Engine steps taken, this one included (skipped steps count: the schedule advances on them too).</summary>
    public required long Step { get; init; }

    /// <summary>Token-mean cross-entropy over the whole accumulation window (sum over tokens / non-masked tokens).</summary>
    public required double Loss { get; init; }

    /// <summary>Global L2 norm of the unscaled gradients before clipping (NaN or infinity on a skipped step).</summary>
    public required double GradientNorm { get; init; }

    public required double LearningRate { get; init; }

    /// <summary>True when the loss scaler saw a non-finite gradient and nothing was updated.</summary>
    public required bool Skipped { get; init; }

    /// <summary>Loss scale used for this step (1 without loss scaling).</summary>
    public required double LossScale { get; init; }

    /// <summary>Non-masked target tokens in the window (the loss denominator).</summary>
    public required long TokenCount { get; init; }

    public required double Seconds { get; init; }

    public double TokensPerSecond => Seconds > 0 ? TokenCount / Seconds : 0;

    /// <summary>Forward, recompute and backward, with the waits below taken out.</summary>
    public required double ComputeSeconds { get; init; }

    /// <summary>Waiting for activation and optimizer-state reads.</summary>
    public required double ReadWaitSeconds { get; init; }

    /// <summary>Waiting for activation and optimizer-state writes (buffers not yet free).</summary>
    public required double WriteWaitSeconds { get; init; }

    /// <summary>Optimizer time on the calling thread after backward (with overlap: only what backward did not hide).</summary>
    public required double OptimizerSeconds { get; init; }

    /// <summary>
    /// Backward waiting for the overlapped optimizer to consume its gradients (their host bound was full): the update,
    /// paced by its optimizer-state reads and writes, was behind backward. Zero when the update is not overlapped.
    /// </summary>
    public double OptimizerWaitSeconds { get; init; }

    /// <summary>
    /// Bytes of spilled layers' saved tensors that did not fit the spill file this step and stayed in host memory (the
    /// file is sized from the plan's estimate of a layer's graph); 0 without spilled layers.
    /// </summary>
    public long UnspilledActivationByteCount { get; init; }

    public required long BytesRead { get; init; }

    public required long BytesWritten { get; init; }

    /// <summary>The step's NVMe bytes by kind (optimizer states, weights, activation checkpoints), read and written.</summary>
    public FineTune.Trainer.Planning.NvmeTraffic Traffic { get; init; }

    /// <summary>Host bytes the engine's pools reserve (fixed after construction).</summary>
    public required long PoolReservedByteCount { get; init; }

    /// <summary>Peak bytes rented from the engine's pools so far.</summary>
    public required long PoolPeakInUseByteCount { get; init; }

    /// <summary>Process peak resident set (VmHWM) so far.</summary>
    public required long PeakResidentByteCount { get; init; }
}
