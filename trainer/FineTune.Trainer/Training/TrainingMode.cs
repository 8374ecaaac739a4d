namespace FineTune.Trainer.Training;

/// <summary>How <see cref="TrainingEngine"/> keeps the training state.</summary>
public enum TrainingMode
{
    /// <summary>
    /// Weights and fp32 gradient accumulators in engine-owned pool buffers, activation checkpoints in pooled host
    /// buffers or NVMe, fp32 master/m/v in the partitioned optimizer (host or NVMe tier).
    /// </summary>
    Offloaded,

    /// <summary>Everything in ordinary tensors, checkpoints kept as tensors, libtorch's AdamW: the comparison baseline.</summary>
    InMemory,
}
