using FineTune.IO;
using FineTune.Offload.Memory;
using FineTune.Offload.Storage;

namespace FineTune.Offload.Swap;

/// <summary>
/// Swap space on NVMe: one <see cref="DeviceFile"/> under the run's nvme_dir holding every extent back to back at
/// 4 KiB-aligned offsets. The file is scratch space and is deleted on Dispose, but a checkpoint can take it as it
/// stands, without a copy (<see cref="TryLinkInto"/>): the checkpoint gets a hard link to the file, and from then on
/// the store copies on write at the extent level: each extent's next write goes to a fresh file (created at the first
/// one), reads follow each extent to where its newest bytes are, and once every extent has moved the old file loses
/// its swap name (the checkpoint's name keeps it). The extra disk is one state's size, for as long as the checkpoint
/// is kept, and no byte is copied.
/// </summary>
public sealed class NvmeSwapStore : ISwapStore
{
    private readonly long[] _offsets;
    private readonly long[] _byteCounts;
    private readonly long _totalByteCount;
    private readonly Func<long, DeviceFile> _createFile;
    private readonly object _gate = new();
    private DeviceFile _file;
    private DeviceFile? _fresh;       // where moved extents live while a checkpoint holds _file
    private bool[]? _moved;           // non-null while copying on write
    private int _movedCount;
    private int _oldFileReads;       // reads in flight from _file while copying on write

    private NvmeSwapStore(long[] offsets, long[] byteCounts, long totalByteCount, Func<long, DeviceFile> createFile)
    {
        _offsets = offsets;
        _byteCounts = byteCounts;
        _totalByteCount = totalByteCount;
        _createFile = createFile;
        _file = createFile(totalByteCount);
    }

    /// <summary>The swap file (the one holding the extents that have not moved).</summary>
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
        return new NvmeSwapStore(offsets, byteCounts, total, createFile);
    }

    public string Description => _file.Description;

    public int ExtentCount => _offsets.Length;

    public long ExtentByteCount(int extent) => _byteCounts[extent];

    /// <summary>Where extent <paramref name="extent"/> starts in the file (the same in every file of this store).</summary>
    public long ExtentOffset(int extent) => _offsets[extent];

    /// <summary>Bytes of one swap file.</summary>
    public long FileByteCount => _totalByteCount;

    /// <summary>True while a checkpoint shares the swap file and some extents have not been written since.</summary>
    public bool IsCopyingOnWrite
    {
        get
        {
            lock (_gate)
                return _moved is not null;
        }
    }

    /// <summary>
    /// Gives <paramref name="path"/> the swap file's current contents without copying: a hard link, after which every
    /// extent's next write goes to fresh extents. Call with no request in flight (a step boundary). False with the
    /// reason when the filesystem cannot link there, or when the newest extents are split across two files (a pass that
    /// wrote only some of them since the last checkpoint); the caller then copies.
    /// </summary>
    public bool TryLinkInto(string path, out string? reason)
    {
        lock (_gate)
        {
            if (_moved is not null && _movedCount > 0)
            {
                reason = $"{_movedCount} of {_moved.Length} extents were rewritten since the last checkpoint and the rest were not";
                return false;
            }
            if (!HardLink.TryCreate(_file.Path, path, out reason))
                return false;
            _moved ??= new bool[_offsets.Length];
            return true;
        }
    }

    public async ValueTask ReadAsync(int extent, HostLease buffer)
    {
        DeviceFile file;
        bool fromOld;
        lock (_gate)
        {
            fromOld = _moved is not null && !_moved[extent];
            file = _moved is not null && _moved[extent] ? _fresh! : _file;
            if (fromOld)
                _oldFileReads++;
        }
        try
        {
            await file.ReadAsync(_offsets[extent], buffer.Buffer, 0, _byteCounts[extent]).ConfigureAwait(false);
        }
        finally
        {
            if (fromOld)
            {
                DeviceFile? retired;
                lock (_gate)
                {
                    _oldFileReads--;
                    retired = TakeRetired();
                }
                retired?.Dispose();
            }
        }
    }

    public async ValueTask WriteAsync(int extent, HostLease buffer)
    {
        DeviceFile file;
        lock (_gate)
        {
            if (_moved is null)
            {
                file = _file;
            }
            else
            {
                _fresh ??= _createFile(_totalByteCount);
                file = _fresh;
            }
        }
        await file.WriteAsync(_offsets[extent], buffer.Buffer, 0, _byteCounts[extent]).ConfigureAwait(false);
        DeviceFile? retired = null;
        lock (_gate)
        {
            if (_moved is not null && !_moved[extent])
            {
                _moved[extent] = true;
                _movedCount++;
                retired = TakeRetired();
            }
        }
        retired?.Dispose();
    }

    /// <summary>
    /// Under the gate: once every extent's newest bytes are in the fresh file and no read of the old one is left, the
    /// fresh file becomes the swap file and the old one is returned to be closed (its swap name goes; the checkpoint's
    /// name keeps its data).
    /// </summary>
    private DeviceFile? TakeRetired()
    {
        if (_moved is null || _movedCount < _moved.Length || _oldFileReads > 0)
            return null;
        DeviceFile old = _file;
        _file = _fresh!;
        _fresh = null;
        _moved = null;
        _movedCount = 0;
        return old;
    }

    public void Dispose()
    {
        _fresh?.Dispose();
        _file.Dispose();
    }
}
