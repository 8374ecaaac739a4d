namespace FineTune.IO.Bench;

/// <summary>CRC32C throughput on one core next to that core's streaming read bandwidth over the same buffer (the limit).</summary>
public sealed record CrcBenchResult(long BufferByteCount, double CrcBytesPerSecond, double MemoryReadBytesPerSecond, string Implementation)
{
    public double Ratio => CrcBytesPerSecond / MemoryReadBytesPerSecond;
}
