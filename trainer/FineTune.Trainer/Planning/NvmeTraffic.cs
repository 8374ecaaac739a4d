namespace FineTune.Trainer.Planning;

/// <summary>NVMe bytes of one optimizer step by kind: optimizer states, weights, activation checkpoints (read, written).</summary>
public readonly record struct NvmeTraffic(long StateReadBytes, long StateWriteBytes, long WeightReadBytes, long WeightWriteBytes,
    long ActivationReadBytes, long ActivationWriteBytes)
{
    public long ReadBytes => StateReadBytes + WeightReadBytes + ActivationReadBytes;

    public long WriteBytes => StateWriteBytes + WeightWriteBytes + ActivationWriteBytes;
}
