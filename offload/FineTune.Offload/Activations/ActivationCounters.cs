namespace FineTune.Offload.Activations;

/// <summary>Running totals of an <see cref="ActivationStore"/> (bytes moved, seconds the compute thread waited).</summary>
public sealed class ActivationCounters
{
    public long BytesWritten { get; internal set; }

    public long BytesRead { get; internal set; }

    /// <summary>Checkpoints that found their data still in a staging buffer (no read needed).</summary>
    public long StagingHits { get; internal set; }

    /// <summary>Seconds Load waited for a read to finish (prefetch not far enough ahead).</summary>
    public double ReadWaitSeconds { get; internal set; }

    /// <summary>Seconds Save or Prefetch waited for a write to free a staging buffer (disk slower than compute).</summary>
    public double WriteWaitSeconds { get; internal set; }

    public ActivationCounters Snapshot() => (ActivationCounters)MemberwiseClone();
}
