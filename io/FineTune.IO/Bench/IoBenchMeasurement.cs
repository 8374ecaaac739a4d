namespace FineTune.IO.Bench;

/// <summary>One timed sequential pass: engine, direction, queue depth, bytes moved and wall time.</summary>
public sealed record IoBenchMeasurement(string Engine, string Operation, int QueueDepth, long ByteCount, TimeSpan Elapsed)
{
    public double BytesPerSecond => ByteCount / Elapsed.TotalSeconds;
}
