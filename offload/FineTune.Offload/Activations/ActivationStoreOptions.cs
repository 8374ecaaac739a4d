using FineTune.IO;

namespace FineTune.Offload.Activations;

/// <summary>
/// Shape of an <see cref="ActivationStore"/>: how many checkpoints a micro-batch saves (one per decoder layer), how
/// many bytes each holds, and how many of them live on NVMe rather than in host buffers. Checkpoints
/// 0 .. NvmeCheckpointCount-1 (the lowest layers: saved first in forward, needed last in backward, so their reads
/// have the most time to be prefetched) go to NVMe; the rest stay in pooled host buffers.
/// </summary>
public sealed record ActivationStoreOptions
{
    /// <summary>Checkpoints saved per micro-batch (the decoder layer count).</summary>
    public required int CheckpointCount { get; init; }

    /// <summary>Bytes of one checkpoint: (B, T, C) x element bytes.</summary>
    public required long CheckpointByteCount { get; init; }

    /// <summary>How many of the lowest checkpoints go to NVMe (0: all in host buffers).</summary>
    public int NvmeCheckpointCount { get; init; }

    /// <summary>Directory of the activation swap file (required when NvmeCheckpointCount &gt; 0).</summary>
    public string? NvmeDirectory { get; init; }

    /// <summary>Host buffers that carry NVMe checkpoints (writes in flight in forward, prefetches in backward); at least 2.</summary>
    public int StagingBufferCount { get; init; } = 3;

    public IoEngineKind IoEngine { get; init; } = IoEngineKind.Auto;

    public int IoQueueDepth { get; init; } = 8;

    /// <summary>Checkpoints that stay in host buffers for the whole run.</summary>
    public int HostCheckpointCount => CheckpointCount - NvmeCheckpointCount;

    internal void Validate()
    {
        if (CheckpointCount < 0 || CheckpointByteCount <= 0)
            throw new ArgumentOutOfRangeException(nameof(CheckpointByteCount), "an activation store needs a positive checkpoint byte count.");
        if (NvmeCheckpointCount < 0 || NvmeCheckpointCount > CheckpointCount)
            throw new ArgumentOutOfRangeException(nameof(NvmeCheckpointCount), $"NVMe checkpoints must be within 0..{CheckpointCount}.");
        if (NvmeCheckpointCount > 0 && StagingBufferCount < 2)
            throw new ArgumentOutOfRangeException(nameof(StagingBufferCount), "NVMe checkpoints need at least 2 staging buffers.");
        if (NvmeCheckpointCount > 0 && string.IsNullOrEmpty(NvmeDirectory))
            throw new UserErrorException("Activations on NVMe need nvme_dir; set it to a directory on a fast local drive.");
    }
}
