using FineTune.IO.Bench;
using Xunit;

namespace FineTune.IO.Tests.Bench;

/// <summary>The bench's plumbing (no timing assertions: figures belong to `finetune bench io`, not to tests).</summary>
public sealed class IoBenchTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public async Task SmallRunMeasuresEveryEngineAndSweepPointAndDeletesItsFiles()
    {
        var options = new IoBenchOptions
        {
            Directory = _directory.FullPath,
            FileByteCount = 8 << 20,
            BlockByteCount = 1 << 20,
            QueueDepth = 4,
            SweepQueueDepths = new[] { 1, 4 },
            SweepByteCount = 4 << 20,
            RunFio = false,
            RoundCount = 2,
            CrcBufferByteCount = 1 << 20,
        };
        IoBenchReport report = await IoBench.RunAsync(options);
        Assert.Equal(new[] { ("io_uring", "write"), ("io_uring", "read"), ("threads", "write"), ("threads", "read") }, report.Series);
        Assert.All(report.Engines, measurement => Assert.Equal(8 << 20, measurement.ByteCount));
        Assert.Equal(2, report.Values("threads", "read").Count);
        Assert.Equal(new[] { 1, 4 }, report.Sweep.Select(point => point.QueueDepth));
        Assert.All(report.Sweep, point => Assert.Equal(4 << 20, point.ByteCount));
        Assert.Contains("not run", report.Fio.Problem);
        Assert.True(report.Crc.CrcBytesPerSecond > 0 && report.Crc.MemoryReadBytesPerSecond > 0);
        Assert.Empty(Directory.GetFiles(_directory.FullPath));
        Assert.True(report.IsDirect);
    }

    [Fact]
    public void MedianOfOddAndEvenCounts()
    {
        Assert.Equal(2.0, IoBenchReport.Median(new[] { 3.0, 1.0, 2.0 }));
        Assert.Equal(2.5, IoBenchReport.Median(new[] { 4.0, 1.0, 2.0, 3.0 }));
        Assert.Null(IoBenchReport.Median(Array.Empty<double>()));
    }

    [Fact]
    public void ParsesFioJsonBandwidth()
    {
        // Trimmed from real fio-3.33 --output-format=json output of an 8 MiB direct io_uring read on this machine.
        const string json = """
            {"fio version" : "fio-3.33", "jobs" : [ { "jobname" : "w", "error" : 0,
              "read" : { "io_bytes" : 8388608, "io_kbytes" : 8192, "bw_bytes" : 645277538, "bw" : 630153, "iops" : 615.384615, "runtime" : 13 },
              "write" : { "io_bytes" : 0, "io_kbytes" : 0, "bw_bytes" : 0, "bw" : 0, "iops" : 0.0, "runtime" : 0 } } ] }
            """;
        Assert.Equal(645277538.0, FioRunner.ParseBandwidth(json, "read"));
        Assert.Equal(0.0, FioRunner.ParseBandwidth(json, "write"));
    }

    [Fact]
    public void FioRunsOnTheSameDirectoryOrSaysItIsMissing()
    {
        FioResult result = FioRunner.Run(_directory.FullPath, 4 << 20, 1 << 20, 4, TimeSpan.FromMinutes(1));
        Assert.Equal(2, result.Commands.Count);
        Assert.Contains("--direct=1", result.Commands[0]);
        Assert.Contains("--ioengine=io_uring", result.Commands[1]);
        if (result.Problem is null)
        {
            Assert.True(result.MedianWriteBytesPerSecond > 0);
            Assert.True(result.MedianReadBytesPerSecond > 0);
        }
        else
        {
            Assert.Contains("fio", result.Problem);
        }
        Assert.Empty(Directory.GetFiles(_directory.FullPath));
    }

    [Theory]
    [InlineData("1GiB", 1L << 30)]
    [InlineData("512 MiB", 512L << 20)]
    [InlineData("64kib", 64L << 10)]
    [InlineData("4096", 4096)]
    public void ParsesByteCounts(string text, long expected) => Assert.Equal(expected, ByteCountText.Parse("--size", text));

    [Theory]
    [InlineData("1GB")]
    [InlineData("-1MiB")]
    [InlineData("99999999999TiB")]
    public void RejectsBadByteCountsAsUserErrors(string text) =>
        Assert.Contains("--size", Assert.Throws<UserErrorException>(() => ByteCountText.Parse("--size", text)).Message);
}
