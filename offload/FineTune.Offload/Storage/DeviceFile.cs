using FineTune.IO;

namespace FineTune.Offload.Storage;

/// <summary>
/// A scratch file on an <see cref="NvmeDevice"/>: preallocated with fallocate, opened once with O_DIRECT (buffered,
/// with a warning, where the filesystem refuses) and kept open; reads and writes go through the device's two queues.
/// Deleted on Dispose. The NVMe tiers of optimizer states, activation checkpoints and weights each hold one; the
/// device (and so the drive's queue) is shared.
/// </summary>
public sealed class DeviceFile : IDisposable
{
    private bool _ownsDevice;

    private DeviceFile(NvmeDevice device, string path, DirectFile file)
    {
        Device = device;
        Path = path;
        File = file;
    }

    public NvmeDevice Device { get; }

    public string Path { get; }

    public DirectFile File { get; }

    /// <summary>"io_uring, O_DIRECT, /path/file.swap": the engine, whether the kernel took O_DIRECT, and the file.</summary>
    public string Engine => $"{Device.EngineName}{(File.IsDirect ? ", O_DIRECT" : ", buffered")}, {Path}";

    /// <summary>"nvme (io_uring, O_DIRECT, /path/file.swap)".</summary>
    public string Description => $"nvme ({Engine})";

    /// <summary>
    /// A file on a device of its own (standalone use of one store: tests, benches, the library without an engine).
    /// The same user errors as <see cref="NvmeDevice.Open"/> and <see cref="NvmeDevice.CreateFile"/>.
    /// </summary>
    public static DeviceFile Create(string? directory, string contents, long byteCount, IoEngineKind engineKind = IoEngineKind.Auto,
        int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        NvmeDevice device = NvmeDevice.Open(directory, contents, engineKind, queueDepth);
        try
        {
            DeviceFile file = device.CreateFile(contents, byteCount);
            file._ownsDevice = true;
            return file;
        }
        catch
        {
            device.Dispose();
            throw;
        }
    }

    /// <summary>
    /// finetune-CONTENTS-GUID.swap in the device's directory, <paramref name="byteCount"/> bytes reserved, flocked as
    /// live from the moment it exists (under the folder's lock, so a concurrent cleanup never sees it unheld).
    /// </summary>
    internal static DeviceFile Create(NvmeDevice device, string contents, long byteCount)
    {
        string path = System.IO.Path.Combine(device.Directory, $"finetune-{contents.Replace(' ', '-')}-{Guid.NewGuid():N}.swap");
        DirectFile? file = null;
        try
        {
            using (Swap.StaleSwapFiles.LockFolder(device.Directory))
            {
                file = DirectFile.Open(path, DirectFileAccess.ReadWrite, create: true);
                Swap.StaleSwapFiles.Claim(file);
            }
            file.Preallocate(byteCount);
            return new DeviceFile(device, path, file);
        }
        catch
        {
            file?.Dispose();
            System.IO.File.Delete(path);
            throw;
        }
    }

    public ValueTask ReadAsync(long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount) =>
        Device.ReadEngine.ReadAsync(File, fileOffset, buffer, bufferOffset, byteCount);

    public ValueTask WriteAsync(long fileOffset, AlignedBuffer buffer, long bufferOffset, long byteCount) =>
        Device.WriteEngine.WriteAsync(File, fileOffset, buffer, bufferOffset, byteCount);

    public void Dispose()
    {
        File.Dispose();
        System.IO.File.Delete(Path);
        if (_ownsDevice)
            Device.Dispose();
    }
}
