using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Parameters;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Parameters;

/// <summary>
/// The weight file: known bf16 bytes written in page-aligned ranges come back from any unaligned element range
/// through its page window, with both io engines; the window math at the start, middle and end of the file; the
/// page rules of writes; user errors for a missing nvme_dir; the file is deleted on Dispose.
/// </summary>
public sealed class WeightFileTests
{
    // 3 pages of bf16 (2,048 elements each) + 100 elements: the last write ends mid-page (200 bytes into page 3).
    private const long ElementCount = 3 * 2048 + 100;

    [Theory]
    [InlineData(IoEngineKind.Threads)]
    [InlineData(IoEngineKind.IoUring)]
    public async Task PageAlignedWritesReadBackFromUnalignedRanges(IoEngineKind kind)
    {
        if (kind == IoEngineKind.IoUring && !IoEngineFactory.IsIoUringAvailable())
            return; // io_uring_setup refused here (seccomp, old kernel): the threads case covers the file.
        using var directory = new SwapDirectory();
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, kind);
        // Writes: one page, two pages, then the file's last 100 elements (the only write allowed to end mid-page).
        WeightPattern.Write(file, 0, 2048, seed: 1);
        WeightPattern.Write(file, 2048, 4096, seed: 1);
        WeightPattern.Write(file, 6144, 100, seed: 1);

        // (first, count, window offset, window bytes): inside page 0, across pages 0-1, the end, the whole file.
        var cases = new (long First, long Count, long Offset, long ByteCount)[]
        {
            (5, 10, 0, 4096),
            (2000, 100, 0, 8192),
            (4097, 1, 8192, 4096),
            (6200, 44, 12288, 4096),
            (0, ElementCount, 0, 16384),
        };
        foreach (var (first, count, windowOffset, windowByteCount) in cases)
        {
            Assert.Equal((windowOffset, windowByteCount), file.Window(first, count));
            using var buffer = new AlignedBuffer(windowByteCount);
            long offset = await file.ReadAsync(first, count, buffer);
            Assert.Equal(first * 2 - windowOffset, offset);
            Assert.Equal(-1, WeightPattern.FirstMismatch(buffer.Address + (nint)offset, first, count, seed: 1));
            // The buffer starts at the window's first element, not at the range's.
            Assert.Equal(WeightPattern.Bits(windowOffset / 2, seed: 1), BitConverter.ToUInt16(buffer.GetSpan(0, 2)));
        }
        Assert.Contains(kind == IoEngineKind.IoUring ? "io_uring" : "thread", file.Description, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task ReadIntoATooSmallBufferThrows()
    {
        using var directory = new SwapDirectory();
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        using var buffer = new AlignedBuffer(4096);
        // Elements [2047, 2049) straddle pages 0 and 1: an 8,192-byte window.
        await Assert.ThrowsAsync<ArgumentException>(async () => await file.ReadAsync(2047, 2, buffer));
    }

    [Fact]
    public void WindowCoversTheWholePagesOfUnalignedRanges()
    {
        using var directory = new SwapDirectory();
        using WeightFile bf16 = WeightFile.Create(directory.Path, ElementType.BFloat16, 10_000, IoEngineKind.Threads);
        Assert.Equal((0L, 4096L), bf16.Window(0, 1));
        Assert.Equal((0L, 4096L), bf16.Window(3, 2045));      // bytes [6, 4096): ends exactly on page 1
        Assert.Equal((0L, 8192L), bf16.Window(2047, 2));      // bytes [4094, 4098)
        Assert.Equal((4096L, 4096L), bf16.Window(2048, 2048));
        Assert.Equal((8192L, 4096L), bf16.Window(5000, 100)); // bytes [10000, 10200)
        Assert.Equal((4096L, 12288L), bf16.Window(3000, 4000)); // bytes [6000, 14000)
        Assert.Equal((16384L, 4096L), bf16.Window(9990, 10)); // bytes [19980, 20000): the file's last page
        Assert.Throws<ArgumentOutOfRangeException>(() => bf16.Window(9999, 2));
        Assert.Throws<ArgumentOutOfRangeException>(() => bf16.Window(-1, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => bf16.Window(10, 0));

        using WeightFile fp32 = WeightFile.Create(directory.Path, ElementType.Float32, 3000, IoEngineKind.Threads);
        Assert.Equal(4, fp32.ElementByteCount);
        Assert.Equal((0L, 8192L), fp32.Window(1023, 2));      // bytes [4092, 4100)
        Assert.Equal((4096L, 4096L), fp32.Window(1024, 1024));
        Assert.Equal((8192L, 4096L), fp32.Window(2500, 500)); // bytes [10000, 12000)
    }

    [Fact]
    public async Task WritesMustStartOnAPageAndEndOnOneUnlessLast()
    {
        using var directory = new SwapDirectory();
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        using var buffer = new AlignedBuffer(3 * 4096);
        ArgumentException notOnPage = Assert.Throws<ArgumentException>(() => file.WriteAsync(1, 2047, buffer));
        Assert.Equal("first", notOnPage.ParamName);
        ArgumentException midPage = Assert.Throws<ArgumentException>(() => file.WriteAsync(0, 100, buffer));
        Assert.Equal("count", midPage.ParamName);
        Assert.Equal("count", Assert.Throws<ArgumentException>(() => file.WriteAsync(2048, 2049, buffer)).ParamName);
        using var small = new AlignedBuffer(4096);
        Assert.Equal("buffer", Assert.Throws<ArgumentException>(() => file.WriteAsync(0, 4096, small)).ParamName);
        Assert.Throws<ArgumentOutOfRangeException>(() => file.WriteAsync(6144, 101, buffer));

        // The file's last range may end mid-page, and whole pages anywhere are fine.
        await file.WriteAsync(6144, 100, buffer);
        await file.WriteAsync(2048, 4196, buffer);
    }

    [Fact]
    public void MissingOrUnsetDirectoryIsAUserErrorNamingNvmeDir()
    {
        UserErrorException unset = Assert.Throws<UserErrorException>(() => WeightFile.Create((string?)null, ElementType.BFloat16, 100));
        Assert.Contains("nvme_dir", unset.Message);
        string missing = Path.Combine(Path.GetTempPath(), "finetune-no-such-dir-" + Guid.NewGuid().ToString("N"));
        UserErrorException absent = Assert.Throws<UserErrorException>(() => WeightFile.Create(missing, ElementType.BFloat16, 100));
        Assert.Contains("nvme_dir", absent.Message);
        Assert.Contains(missing, absent.Message);
    }

    [Fact]
    public void CreatePreallocatesAndDisposeDeletesTheFile()
    {
        using var directory = new SwapDirectory();
        WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        string path = file.Path;
        Assert.Equal(directory.Path, Path.GetDirectoryName(path));
        Assert.True(File.Exists(path));
        Assert.True(new FileInfo(path).Length >= 16384, $"{new FileInfo(path).Length} bytes preallocated for 4 pages");
        file.Dispose();
        Assert.False(File.Exists(path));
        Assert.Empty(Directory.GetFileSystemEntries(directory.Path));
    }
}
