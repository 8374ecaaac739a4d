namespace FineTune.Offload.Rings;

/// <summary>
/// A point-in-time copy of <see cref="TransferCounters"/>: subtract two to get what happened in between, add
/// several to get a whole engine's total.
/// </summary>
public readonly record struct TransferSnapshot(
    long BytesRead,
    long BytesWritten,
    long Reads,
    long Writes,
    long Hits,
    double ReadWaitSeconds,
    double WriteWaitSeconds,
    double ComputeSeconds)
{
    public static TransferSnapshot operator -(TransferSnapshot after, TransferSnapshot before) => new(
        after.BytesRead - before.BytesRead, after.BytesWritten - before.BytesWritten, after.Reads - before.Reads,
        after.Writes - before.Writes, after.Hits - before.Hits, after.ReadWaitSeconds - before.ReadWaitSeconds,
        after.WriteWaitSeconds - before.WriteWaitSeconds, after.ComputeSeconds - before.ComputeSeconds);

    public static TransferSnapshot operator +(TransferSnapshot a, TransferSnapshot b) => new(
        a.BytesRead + b.BytesRead, a.BytesWritten + b.BytesWritten, a.Reads + b.Reads, a.Writes + b.Writes, a.Hits + b.Hits,
        a.ReadWaitSeconds + b.ReadWaitSeconds, a.WriteWaitSeconds + b.WriteWaitSeconds, a.ComputeSeconds + b.ComputeSeconds);
}
