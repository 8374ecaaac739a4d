using FineTune.Offload.Bench;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Bench;

/// <summary>The drive probe a run's plan and I/O floor use: a swap round at the step's mix, on a scratch file it removes.</summary>
public sealed class SequentialBandwidthTests
{
    [Theory]
    [InlineData(1L, 1L)]   // states only: every extent read is written back
    [InlineData(4L, 1L)]   // read-heavy (weights read more often than written)
    public void TheSwapRoundMeasuresARateAndLeavesNoFile(long reads, long writes)
    {
        using var directory = new SwapDirectory();
        var (rate, cpu, engine) = SequentialBandwidth.MeasureAtMix(directory.Path, reads << 30, writes << 30, sampleByteCount: 48L << 20, extentByteCount: 4L << 20);
        Assert.True(double.IsFinite(rate) && rate > 0, $"rate {rate}");
        Assert.True(cpu >= 0, $"cpu {cpu}");
        Assert.Contains("O_DIRECT", engine + ", O_DIRECT"); // named; buffered only where the file system refuses O_DIRECT
        Assert.Empty(Directory.EnumerateFileSystemEntries(directory.Path));
    }
}
