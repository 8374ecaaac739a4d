using System.Diagnostics;

namespace FineTune.Offload.Rings;

/// <summary>
/// The one counters type of the offload layer: every ring, store and the optimizer keep one, and the training step
/// reads a <see cref="TransferSnapshot"/> before and after and subtracts. Bytes and requests moved each way, hits
/// (a request served by a buffer that already held the data), the seconds a caller waited for a read or for a write
/// to free a buffer, and the seconds of compute passes (AdamW, norm). Thread-safe: the compute thread, the optimizer's
/// task and I/O completions may all add; times are kept as Stopwatch ticks so every field is one Interlocked add.
/// </summary>
public sealed class TransferCounters
{
    private long _bytesRead, _bytesWritten, _reads, _writes, _hits, _readWaitTicks, _writeWaitTicks, _computeTicks;

    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    /// <summary>Read requests started (a prefetch that is never used still counts: its bytes moved).</summary>
    public long Reads => Interlocked.Read(ref _reads);

    public long Writes => Interlocked.Read(ref _writes);

    /// <summary>Uses served from a buffer that already held the data (no read).</summary>
    public long Hits => Interlocked.Read(ref _hits);

    /// <summary>Seconds callers waited for a read to finish (prefetch not far enough ahead).</summary>
    public double ReadWaitSeconds => ToSeconds(Interlocked.Read(ref _readWaitTicks));

    /// <summary>Seconds callers waited for a write to free a buffer, or for the last writes of a step.</summary>
    public double WriteWaitSeconds => ToSeconds(Interlocked.Read(ref _writeWaitTicks));

    /// <summary>Seconds of compute passes counted here (the optimizer's fused AdamW and norm passes).</summary>
    public double ComputeSeconds => ToSeconds(Interlocked.Read(ref _computeTicks));

    public TransferSnapshot Snapshot() => new(BytesRead, BytesWritten, Reads, Writes, Hits, ReadWaitSeconds, WriteWaitSeconds, ComputeSeconds);

    public void AddRead(long byteCount)
    {
        Interlocked.Add(ref _bytesRead, byteCount);
        Interlocked.Increment(ref _reads);
    }

    public void AddWrite(long byteCount)
    {
        Interlocked.Add(ref _bytesWritten, byteCount);
        Interlocked.Increment(ref _writes);
    }

    internal void AddHit() => Interlocked.Increment(ref _hits);

    /// <summary>Adds the time since <paramref name="startTimestamp"/> (Stopwatch.GetTimestamp) to the read waits.</summary>
    public void AddReadWaitSince(long startTimestamp) => Interlocked.Add(ref _readWaitTicks, Stopwatch.GetTimestamp() - startTimestamp);

    public void AddWriteWaitSince(long startTimestamp) => Interlocked.Add(ref _writeWaitTicks, Stopwatch.GetTimestamp() - startTimestamp);

    internal void AddComputeSince(long startTimestamp) => Interlocked.Add(ref _computeTicks, Stopwatch.GetTimestamp() - startTimestamp);

    private static double ToSeconds(long ticks) => ticks / (double)Stopwatch.Frequency;
}
