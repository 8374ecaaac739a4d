using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Swap;

/// <summary>
/// Swap space on NVMe: one file under the run's nvme_dir, preallocated with fallocate at creation, holding every
/// extent back to back at 4 KiB-aligned offsets; opened once with O_DIRECT and kept open. Reads and writes go to
/// two separate io engines (two queues), so a write-back never waits behind a prefetch. The file is scratch space
/// and is deleted on Dispose. Not a checkpoint: see OptimizerStateFile for state that must survive the run.
/// </summary>
public sealed class NvmeSwapStore : ISwapStore
{
    private readonly long[] _offsets;
    private readonly long[] _byteCounts;
    private readonly DirectFile _file;
    private readonly IIoEngine _readEngine;
    private readonly IIoEngine _writeEngine;

    private NvmeSwapStore(string path, long[] offsets, long[] byteCounts, DirectFile file, IIoEngine readEngine, IIoEngine writeEngine)
    {
        Path = path;
        _offsets = offsets;
        _byteCounts = byteCounts;
        _file = file;
        _readEngine = readEngine;
        _writeEngine = writeEngine;
    }

    /// <summary>The swap file.</summary>
    public string Path { get; }

    /// <summary>
    /// Creates and preallocates the swap file in <paramref name="directory"/>; refuses with a
    /// <see cref="UserErrorException"/> when the directory lacks the space.
    /// </summary>
    public static NvmeSwapStore Create(string directory, IReadOnlyList<long> extentByteCounts, IoEngineKind engineKind = IoEngineKind.Auto,
        int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        if (!Directory.Exists(directory))
            throw new UserErrorException($"The NVMe swap directory {directory} does not exist; create it or set nvme_dir to an existing directory.");
        long[] byteCounts = extentByteCounts.Select(HostAlignment.RoundUpToPage).ToArray();
        var offsets = new long[byteCounts.Length];
        long total = 0;
        for (int i = 0; i < byteCounts.Length; i++)
        {
            offsets[i] = total;
            total += byteCounts[i];
        }
        long available = new DriveInfo(System.IO.Path.GetFullPath(directory)).AvailableFreeSpace;
        if (total > available)
            throw new UserErrorException(
                $"The optimizer swap space needs {HostMemoryPool.FormatGiB(total)} in {directory} but only {HostMemoryPool.FormatGiB(available)} is free; free space or choose another nvme_dir.");
        string path = System.IO.Path.Combine(directory, $"finetune-optimizer-{Environment.ProcessId}-{Guid.NewGuid():N}.swap");
        DirectFile? file = null;
        IIoEngine? readEngine = null;
        try
        {
            file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
            file.Preallocate(Math.Max(total, HostAlignment.PageByteCount));
            readEngine = IoEngineFactory.Create(engineKind, queueDepth);
            IIoEngine writeEngine = IoEngineFactory.Create(engineKind, queueDepth);
            return new NvmeSwapStore(path, offsets, byteCounts, file, readEngine, writeEngine);
        }
        catch
        {
            readEngine?.Dispose();
            file?.Dispose();
            File.Delete(path);
            throw;
        }
    }

    public string Description => $"nvme ({_readEngine.Name}{(_file.IsDirect ? ", O_DIRECT" : ", buffered")}, {Path})";

    public int ExtentCount => _offsets.Length;

    public long ExtentByteCount(int extent) => _byteCounts[extent];

    public long BytesRead => _readEngine.BytesRead;

    public long BytesWritten => _writeEngine.BytesWritten;

    public ValueTask ReadAsync(int extent, HostLease buffer) =>
        _readEngine.ReadAsync(_file, _offsets[extent], buffer.Buffer, 0, _byteCounts[extent]);

    public ValueTask WriteAsync(int extent, HostLease buffer) =>
        _writeEngine.WriteAsync(_file, _offsets[extent], buffer.Buffer, 0, _byteCounts[extent]);

    public void Dispose()
    {
        _readEngine.Dispose();
        _writeEngine.Dispose();
        _file.Dispose();
        File.Delete(Path);
    }
}
