using FineTune.IO;
using FineTune.Offload.Memory;
using FineTune.Offload.Storage;

namespace FineTune.Offload.Swap;

/// <summary>
/// Swap space on NVMe: one <see cref="DeviceFile"/> under the run's nvme_dir holding every extent back to back at
/// 4 KiB-aligned offsets. The file is scratch space and is deleted on Dispose. Not a checkpoint: see
/// OptimizerStateFile for state that must survive the run.
/// </summary>
public sealed class NvmeSwapStore : ISwapStore
{
    private readonly long[] _offsets;
    private readonly long[] _byteCounts;
    private readonly DeviceFile _file;

    private NvmeSwapStore(long[] offsets, long[] byteCounts, DeviceFile file)
    {
        _offsets = offsets;
        _byteCounts = byteCounts;
        _file = file;
    }

    /// <summary>The swap file.</summary>
    public string Path => _file.Path;

    /// <summary>
    /// Creates and preallocates the swap file in <paramref name="directory"/>; refuses with a
    /// <see cref="UserErrorException"/> when the directory is missing or lacks the space.
    /// </summary>
    public static NvmeSwapStore Create(string directory, IReadOnlyList<long> extentByteCounts, IoEngineKind engineKind = IoEngineKind.Auto,
        int queueDepth = IoEngineFactory.DefaultQueueDepth) =>
        Create(extentByteCounts, total => DeviceFile.Create(directory, "optimizer states", total, engineKind, queueDepth));

    /// <summary>As above, on a drive shared with the run's other stores.</summary>
    public static NvmeSwapStore Create(NvmeDevice device, IReadOnlyList<long> extentByteCounts) =>
        Create(extentByteCounts, total => device.CreateFile("optimizer states", total));

    private static NvmeSwapStore Create(IReadOnlyList<long> extentByteCounts, Func<long, DeviceFile> createFile)
    {
        long[] byteCounts = extentByteCounts.Select(HostAlignment.RoundUpToPage).ToArray();
        var offsets = new long[byteCounts.Length];
        long total = 0;
        for (int i = 0; i < byteCounts.Length; i++)
        {
            offsets[i] = total;
            total += byteCounts[i];
        }
        return new NvmeSwapStore(offsets, byteCounts, createFile(total));
    }

    public string Description => _file.Description;

    public int ExtentCount => _offsets.Length;

    public long ExtentByteCount(int extent) => _byteCounts[extent];


    public ValueTask ReadAsync(int extent, HostLease buffer) => _file.ReadAsync(_offsets[extent], buffer.Buffer, 0, _byteCounts[extent]);

    public ValueTask WriteAsync(int extent, HostLease buffer) => _file.WriteAsync(_offsets[extent], buffer.Buffer, 0, _byteCounts[extent]);

    public void Dispose() => _file.Dispose();
}
