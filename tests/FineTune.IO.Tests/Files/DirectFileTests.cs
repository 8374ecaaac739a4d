using FineTune.IO;
using Xunit;

namespace FineTune.IO.Tests.Files;

public sealed class DirectFileTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    [Fact]
    public void OpensWithODirectOnABlockFileSystem()
    {
        using DirectFile file = DirectFile.Open(_directory.File("d.bin"), DirectFileAccess.ReadWrite, create: true);
        // Disk file systems support O_DIRECT; elsewhere (old tmpfs, some overlays) the buffered fallback is legitimate.
        string fileSystem = FileSystemType(_directory.FullPath);
        if (fileSystem is "ext4" or "xfs" or "btrfs" or "f2fs")
            Assert.True(file.IsDirect, $"{file.Path} on {fileSystem} was opened without O_DIRECT");
        Assert.Equal(4096, file.SectorByteCount);
        Assert.Equal(0, file.Length);
        Assert.False(file.Handle.IsInvalid);
    }

    [Fact]
    public void PreallocateExtendsAndReservesAndFsyncSucceeds()
    {
        using DirectFile file = DirectFile.Open(_directory.File("p.bin"), DirectFileAccess.ReadWrite, create: true);
        file.Preallocate(3 << 20);
        Assert.Equal(3 << 20, file.Length);
        file.Preallocate(1 << 20); // never shrinks
        Assert.Equal(3 << 20, file.Length);
        file.Fsync();
    }

    [Fact]
    public async Task BufferedFallbackStillServesTheEngine()
    {
        using DirectFile file = DirectFile.Open(_directory.File("b.bin"), DirectFileAccess.ReadWrite, create: true, allowDirect: false);
        Assert.False(file.IsDirect);
        using IIoEngine engine = IoEngineFactory.Create(IoEngineKind.Threads, 2);
        using var buffer = new AlignedBuffer(8192);
        buffer.Span.Fill(7);
        await engine.WriteAsync(file, 4096, buffer, 0, 8192);
        Assert.Equal(12288, file.Length);
        using var check = new AlignedBuffer(8192);
        await engine.ReadAsync(file, 4096, check, 0, 8192);
        Assert.True(check.Span.SequenceEqual(buffer.Span));
    }

    [Fact]
    public void MissingFileWithoutCreateNamesPathAndErrno()
    {
        string path = _directory.File("absent.bin");
        var error = Assert.Throws<DirectIoException>(() => DirectFile.Open(path, DirectFileAccess.Read, create: false));
        Assert.Equal(2, error.Errno);
        Assert.Contains("ENOENT", error.Message);
        Assert.Contains(path, error.Message);
        Assert.Equal("open", error.Operation);
    }

    [Fact]
    public void PreallocatingMoreThanTheFileSystemHoldsIsDiskFull()
    {
        // tmpfs rejects an fallocate larger than its size limit at once with ENOSPC, without filling anything.
        if (!Directory.Exists("/dev/shm"))
            return;
        string path = Path.Combine("/dev/shm", "finetune-enospc-" + Guid.NewGuid().ToString("N"));
        try
        {
            using DirectFile file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
            const long bytesNeeded = 1L << 50;
            var error = Assert.Throws<DiskFullException>(() => file.Preallocate(bytesNeeded));
            Assert.Equal(bytesNeeded, error.BytesNeeded);
            Assert.Contains($"needed {bytesNeeded} bytes", error.Message);
            Assert.Contains(path, error.Message);
            Assert.NotNull(error.BytesAvailable);
            Assert.IsAssignableFrom<IOException>(error);
            Assert.Equal(28, error.Errno);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void AvailableBytesMatchesDf()
    {
        long? available = DiskFullException.TryGetAvailableBytes(_directory.File("future.bin"));
        Assert.NotNull(available);
        // Reference: coreutils df (statvfs f_bavail x f_frsize) on the same directory.
        var start = new System.Diagnostics.ProcessStartInfo("df", $"--output=avail -B1 {_directory.FullPath}") { RedirectStandardOutput = true };
        using var df = System.Diagnostics.Process.Start(start)!;
        string[] lines = df.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        df.WaitForExit();
        long reference = long.Parse(lines[^1].Trim(), System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(available!.Value, reference - (256L << 20), reference + (256L << 20)); // other writers share the disk
    }

    /// <summary>The fstype of the mount holding <paramref name="path"/>, from /proc/self/mountinfo (longest prefix).</summary>
    private static string FileSystemType(string path)
    {
        string best = "", type = "unknown";
        foreach (string line in File.ReadLines("/proc/self/mountinfo"))
        {
            string[] fields = line.Split(' ');
            int separator = Array.IndexOf(fields, "-");
            string mountPoint = fields[4];
            bool contains = path == mountPoint || path.StartsWith(mountPoint.TrimEnd('/') + "/", StringComparison.Ordinal);
            if (separator > 0 && contains && mountPoint.Length >= best.Length)
                (best, type) = (mountPoint, fields[separator + 1]);
        }
        return type;
    }
}
