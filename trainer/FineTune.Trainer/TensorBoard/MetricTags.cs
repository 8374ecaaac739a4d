namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// The TensorBoard tags the trainer logs. Names follow the HF Trainer's `train/…`, `eval/…` convention
/// (FORMATS.md §4.5) plus our memory and I/O counters; the unit is part of the name.
/// </summary>
public static class MetricTags
{
    public const string TrainLoss = "train/loss";
    public const string TrainLearningRate = "train/lr";
    public const string TrainGradNorm = "train/grad_norm";
    public const string TrainTokensPerSecond = "train/tokens_per_s";
    public const string HostPeakBytes = "mem/host_peak_bytes";
    public const string PoolInUseBytes = "mem/pool_in_use_bytes";
    public const string ReadBytesPerSecond = "io/read_bytes_per_s";
    public const string WriteBytesPerSecond = "io/write_bytes_per_s";
    public const string EvalLoss = "eval/loss";

    /// <summary>The metrics the hparams dashboard shows next to each run's hyperparameters.</summary>
    public static readonly IReadOnlyList<string> HParamsMetrics = [TrainLoss, EvalLoss, TrainTokensPerSecond];
}
