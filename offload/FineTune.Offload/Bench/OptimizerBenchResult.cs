namespace FineTune.Offload.Bench;

/// <summary>One allocator's run in `finetune bench optimizer`.</summary>
/// <param name="Refused">The host budget refused this allocator's pool (then only the byte counts are filled).</param>
public sealed record OptimizerRun(
    string Allocator,
    bool Refused,
    string? RefusalMessage,
    double StepSeconds,
    long BytesReadPerStep,
    long BytesWrittenPerStep,
    double ReadWaitSecondsPerStep,
    double WriteWaitSecondsPerStep,
    double UpdateSecondsPerStep,
    long PoolReservedByteCount,
    long PoolPeakInUseByteCount,
    long PeakResidentByteCount);

/// <summary>Figures of `finetune bench optimizer`.</summary>
public sealed record OptimizerBenchResult(
    long ParamCount,
    long SubGroupElementCount,
    int SubGroupCount,
    string StateLocation,
    double ReadBytesPerSecond,
    double WriteBytesPerSecond,
    string BandwidthEngine,
    OptimizerRun Exact,
    OptimizerRun Baseline)
{
    /// <summary>The I/O floor of one step: its bytes read and written at the measured sequential bandwidths.</summary>
    public double IoFloorSeconds => Exact.BytesReadPerStep / ReadBytesPerSecond + Exact.BytesWrittenPerStep / WriteBytesPerSecond;

    public double StepOverFloor => Exact.StepSeconds / IoFloorSeconds;

    /// <summary>
    /// The floor when the drive reads and writes at full speed at once (reads and writes run on separate queues):
    /// the larger of the two transfer times. Lower than <see cref="IoFloorSeconds"/>; a step can beat the serial floor.
    /// </summary>
    public double OverlappedIoFloorSeconds => Math.Max(Exact.BytesReadPerStep / ReadBytesPerSecond, Exact.BytesWrittenPerStep / WriteBytesPerSecond);

    /// <summary>Pool bytes of the exact allocator over the baseline's, for the same optimizer configuration.</summary>
    public double PoolRatio => (double)Exact.PoolReservedByteCount / Baseline.PoolReservedByteCount;
}
