namespace FineTune.Cli.Bench;

/// <summary>One collective's figures: the best round's seconds (the slowest rank's, as every rank waits for it) and
/// its bus bandwidth (nccl-tests' busbw: the bytes each rank's link must carry per second, comparable across W).</summary>
internal sealed record CollectiveTiming(string Name, double Seconds, long BufferByteCount, double BusFactor)
{
    public double AlgorithmBytesPerSecond => BufferByteCount / Seconds;
    public double BusBytesPerSecond => AlgorithmBytesPerSecond * BusFactor;
}
