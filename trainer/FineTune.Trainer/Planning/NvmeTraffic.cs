namespace FineTune.Trainer.Planning;

/// <summary>
/// NVMe bytes of one optimizer step by kind: optimizer states, weights, activation checkpoints, and a tied LM head's
/// gradient waiting for the embedding's (read, written).
/// </summary>
public readonly record struct NvmeTraffic(long StateReadBytes, long StateWriteBytes, long WeightReadBytes, long WeightWriteBytes,
    long ActivationReadBytes, long ActivationWriteBytes, long GradientReadBytes = 0, long GradientWriteBytes = 0)
{
    public long ReadBytes => StateReadBytes + WeightReadBytes + ActivationReadBytes + GradientReadBytes;

    public long WriteBytes => StateWriteBytes + WeightWriteBytes + ActivationWriteBytes + GradientWriteBytes;
}
