using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Storage;

/// <summary>
/// One drive (one nvme_dir) as the whole run sees it: one read queue and one write queue (two io engines) shared by
/// every store on the directory — optimizer states, activation checkpoints, weights — so the drive's queue depth is
/// planned once and a burst from one store waits behind the others instead of oversubscribing the drive with a ring
/// of its own. Reads and writes stay on separate queues so a write-back never waits behind a prefetch.
/// Files are created on it with <see cref="CreateFile"/>. Dispose after the files (it waits for requests in flight).
/// reference: FASTER's IDevice (one device object per drive, carrying its sector size); MLP-Offload (one queue per drive).
/// </summary>
public sealed class NvmeDevice : IDisposable
{
    private NvmeDevice(string directory, IIoEngine readEngine, IIoEngine writeEngine)
    {
        Directory = directory;
        ReadEngine = readEngine;
        WriteEngine = writeEngine;
    }

    /// <summary>The directory (full path) files are created in.</summary>
    public string Directory { get; }

    public IIoEngine ReadEngine { get; }

    public IIoEngine WriteEngine { get; }

    /// <summary>Chunks the drive has in flight at most, per direction.</summary>
    public int QueueDepth => ReadEngine.QueueDepth;

    /// <summary>
    /// Opens the device for <paramref name="directory"/>. A missing nvme_dir or directory is a
    /// <see cref="UserErrorException"/> naming <paramref name="purpose"/> (what needs the drive) and what to change.
    /// </summary>
    public static NvmeDevice Open(string? directory, string purpose, IoEngineKind engineKind = IoEngineKind.Auto, int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        if (directory is null)
            throw new UserErrorException($"The {purpose} on NVMe need nvme_dir; set offload.nvme_dir to a directory on a fast local drive.");
        if (!System.IO.Directory.Exists(directory))
            throw new UserErrorException($"The NVMe directory {directory} for the {purpose} does not exist; create it or set nvme_dir to an existing directory.");
        IIoEngine readEngine = IoEngineFactory.Create(engineKind, queueDepth);
        try
        {
            return new NvmeDevice(Path.GetFullPath(directory), readEngine, IoEngineFactory.Create(engineKind, queueDepth));
        }
        catch
        {
            readEngine.Dispose();
            throw;
        }
    }

    /// <summary>Bytes free on the directory's filesystem now.</summary>
    public long AvailableByteCount => new DriveInfo(Directory).AvailableFreeSpace;

    /// <summary>
    /// Creates a preallocated scratch file of at least <paramref name="byteCount"/> bytes (page-rounded) for
    /// <paramref name="contents"/>, after removing the swap files of dead runs in the directory
    /// (<see cref="Swap.StaleSwapFiles"/>: a live one is flocked by its owner); too little free space is a
    /// <see cref="UserErrorException"/>.
    /// </summary>
    public DeviceFile CreateFile(string contents, long byteCount)
    {
        Swap.StaleSwapFiles.Remove(Directory);
        long size = Math.Max(HostAlignment.RoundUpToPage(byteCount), HostAlignment.PageByteCount);
        long available = AvailableByteCount;
        if (size > available)
            throw new UserErrorException(
                $"The {contents} need {HostMemoryPool.FormatGiB(size)} in {Directory} but only {HostMemoryPool.FormatGiB(available)} is free; free space or choose another nvme_dir.");
        return DeviceFile.Create(this, contents, size);
    }

    /// <summary>"io_uring" or "threads".</summary>
    public string EngineName => ReadEngine.Name;

    public void Dispose()
    {
        ReadEngine.Dispose();
        WriteEngine.Dispose();
    }
}
