using FineTune.IO;
using FineTune.IO.Engines;
using Xunit;

namespace FineTune.IO.Tests.Engines;

public sealed class IoEngineFactoryTests
{
    [Fact]
    public void AutoPicksIoUringWhereItWorks()
    {
        // This machine's kernel allows io_uring (the IoUring contract suite runs here too).
        Assert.True(IoEngineFactory.IsIoUringAvailable());
        if (Environment.GetEnvironmentVariable("FINETUNE_IO_ENGINE") is not null)
            return;
        using IIoEngine engine = IoEngineFactory.Create();
        Assert.Equal("io_uring", engine.Name);
        Assert.Equal(32, engine.QueueDepth);
        Assert.Equal(1 << 20, engine.MaxRequestByteCount);
    }

    [Fact]
    public void AutoFallsBackToThreadsWithOneWarningWhenSetupFails()
    {
        var warnings = new List<string>();
        using IIoEngine engine = IoEngineFactory.CreateAuto(
            () => throw new IoUringUnavailableException("io_uring_setup failed with EPERM (Operation not permitted)"),
            () => IoEngineFactory.Create(IoEngineKind.Threads, 4),
            warnings.Add);
        Assert.Equal("threads", engine.Name);
        string warning = Assert.Single(warnings);
        Assert.Contains("EPERM", warning);
        Assert.Contains("pread/pwrite threads", warning);
    }

    [Fact]
    public void WarnOnceReportsEachKeyOnce()
    {
        var seen = new List<string>();
        Action<string> previous = IoLog.Warn;
        string key = "test-" + Guid.NewGuid();
        IoLog.Warn = message => { if (message.StartsWith(key, StringComparison.Ordinal)) seen.Add(message); };
        try
        {
            IoLog.WarnOnce(key, key + " first");
            IoLog.WarnOnce(key, key + " second");
        }
        finally
        {
            IoLog.Warn = previous;
        }
        Assert.Equal(new[] { key + " first" }, seen);
    }

    [Theory]
    [InlineData(0, 1 << 20)]
    [InlineData(8, 1000)]
    public void RejectsBadQueueDepthOrRequestSize(int queueDepth, int maxRequestByteCount) =>
        Assert.ThrowsAny<ArgumentException>(() => IoEngineFactory.Create(IoEngineKind.Threads, queueDepth, maxRequestByteCount));

    [Fact]
    public void AlignedBufferRoundsCapacityToTheSectorAndIsAligned()
    {
        using var buffer = new AlignedBuffer(5000);
        Assert.Equal(5000, buffer.ByteCount);
        Assert.Equal(8192, buffer.CapacityByteCount);
        Assert.Equal(0, buffer.Address % 4096);
        Assert.Equal(5000, buffer.Span.Length);
        Assert.True(buffer.GetSpan(0, 8192).IndexOfAnyExcept((byte)0) < 0);
        using var empty = new AlignedBuffer(0);
        Assert.Equal(4096, empty.CapacityByteCount);
    }

    [Fact]
    public void IoUringUsesDeferredTaskRunWhereTheKernelHasIt()
    {
        using var engine = new IoUringEngine(4, 1 << 20);
        if (Environment.OSVersion.Version >= new Version(6, 1))
            Assert.Equal(IoUringConstants.SetupSingleIssuer | IoUringConstants.SetupDeferTaskRun, engine.SetupFlags);
    }
}
