using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Swap;

/// <summary>
/// A scratch file under nvme_dir: preallocated with fallocate at creation, opened once with O_DIRECT (buffered, with
/// a warning, where the filesystem refuses) and kept open, with its own read and write io engines (two queues, so a
/// write-back never waits behind a prefetch). Deleted on Dispose. The NVMe tiers of optimizer states
/// (<see cref="NvmeSwapStore"/>), activation checkpoints and offloaded weights each own one.
/// </summary>
public sealed class SwapFile : IDisposable
{
    private SwapFile(string path, DirectFile file, IIoEngine readEngine, IIoEngine writeEngine)
    {
        Path = path;
        File = file;
        ReadEngine = readEngine;
        WriteEngine = writeEngine;
    }

    public string Path { get; }

    public DirectFile File { get; }

    public IIoEngine ReadEngine { get; }

    public IIoEngine WriteEngine { get; }

    /// <summary>"io_uring, O_DIRECT, /path/file.swap": the engine, whether the kernel took O_DIRECT, and the file.</summary>
    public string Engine => $"{ReadEngine.Name}{(File.IsDirect ? ", O_DIRECT" : ", buffered")}, {Path}";

    /// <summary>"nvme (io_uring, O_DIRECT, /path/file.swap)".</summary>
    public string Description => $"nvme ({Engine})";

    /// <summary>
    /// Creates finetune-<paramref name="contents"/>-GUID.swap in <paramref name="directory"/> with
    /// <paramref name="byteCount"/> bytes reserved, after removing the swap files of dead runs there
    /// (<see cref="StaleSwapFiles"/>: a live file is flocked by its owner). A missing directory or too little free
    /// space is a <see cref="UserErrorException"/> naming <paramref name="contents"/> and what to change.
    /// </summary>
    public static SwapFile Create(string? directory, string contents, long byteCount, IoEngineKind engineKind = IoEngineKind.Auto,
        int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        if (directory is null)
            throw new UserErrorException($"The {contents} on NVMe need nvme_dir; set offload.nvme_dir to a directory on a fast local drive.");
        if (!Directory.Exists(directory))
            throw new UserErrorException($"The NVMe directory {directory} for the {contents} does not exist; create it or set nvme_dir to an existing directory.");
        StaleSwapFiles.Remove(directory);
        long size = Math.Max(HostAlignment.RoundUpToPage(byteCount), HostAlignment.PageByteCount);
        long available = new DriveInfo(System.IO.Path.GetFullPath(directory)).AvailableFreeSpace;
        if (size > available)
            throw new UserErrorException(
                $"The {contents} need {HostMemoryPool.FormatGiB(size)} in {directory} but only {HostMemoryPool.FormatGiB(available)} is free; free space or choose another nvme_dir.");
        string path = System.IO.Path.Combine(directory, $"finetune-{contents.Replace(' ', '-')}-{Guid.NewGuid():N}.swap");
        DirectFile? file = null;
        IIoEngine? readEngine = null;
        try
        {
            using (StaleSwapFiles.LockFolder(directory))
            {
                file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
                StaleSwapFiles.Claim(file);
            }
            file.Preallocate(size);
            readEngine = IoEngineFactory.Create(engineKind, queueDepth);
            IIoEngine writeEngine = IoEngineFactory.Create(engineKind, queueDepth);
            return new SwapFile(path, file, readEngine, writeEngine);
        }
        catch
        {
            readEngine?.Dispose();
            file?.Dispose();
            System.IO.File.Delete(path);
            throw;
        }
    }

    public ValueTask ReadAsync(long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount) =>
        ReadEngine.ReadAsync(File, fileOffset, buffer, bufferOffset, byteCount);

    public ValueTask WriteAsync(long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount) =>
        WriteEngine.WriteAsync(File, fileOffset, buffer, bufferOffset, byteCount);

    public void Dispose()
    {
        ReadEngine.Dispose();
        WriteEngine.Dispose();
        File.Dispose();
        System.IO.File.Delete(Path);
    }
}
