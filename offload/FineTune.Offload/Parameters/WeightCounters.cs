namespace FineTune.Offload.Parameters;

/// <summary>
/// Running totals of parameter offload: bytes read into <see cref="WeightSlots"/> and written back by
/// <see cref="WeightWriteBack"/>, how often a stage was already resident, and the seconds callers waited.
/// Written from the compute thread and the optimizer's task; reads are snapshots.
/// </summary>
public sealed class WeightCounters
{
    private readonly object _lock = new();
    private long _bytesRead, _bytesWritten, _reads, _hits;
    private double _readWait, _writeWait;

    public long BytesRead { get { lock (_lock) return _bytesRead; } }

    public long BytesWritten { get { lock (_lock) return _bytesWritten; } }

    /// <summary>Stage windows read from the file.</summary>
    public long Reads { get { lock (_lock) return _reads; } }

    /// <summary>Acquires that found the stage already resident (kept from its last use, or prefetched).</summary>
    public long Hits { get { lock (_lock) return _hits; } }

    /// <summary>Seconds the compute thread waited for a stage's weights (prefetch not far enough ahead).</summary>
    public double ReadWaitSeconds { get { lock (_lock) return _readWait; } }

    /// <summary>Seconds the optimizer waited for a weight write to free its buffer, or for the last ones at the end of a step.</summary>
    public double WriteWaitSeconds { get { lock (_lock) return _writeWait; } }

    internal void AddRead(long byteCount) { lock (_lock) { _bytesRead += byteCount; _reads++; } }

    internal void AddHit() { lock (_lock) _hits++; }

    internal void AddReadWait(double seconds) { lock (_lock) _readWait += seconds; }

    internal void AddWriteWait(double seconds) { lock (_lock) _writeWait += seconds; }

    internal void AddBytesWritten(long byteCount) { lock (_lock) _bytesWritten += byteCount; }
}
