using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Storage;

namespace FineTune.Offload.Parameters;

/// <summary>
/// The low-precision weights of every parameter in one preallocated O_DIRECT file under nvme_dir (parameter
/// offload), laid out as the optimizer's flat element space: element e at byte e * ElementByteCount, no padding, so
/// a sub-group is one contiguous byte range (written back whole by <see cref="WeightWriteBack"/>) and a model stage
/// is one too (read by <see cref="WeightSlots"/> as the page window that holds it). Reads and writes have separate
/// io engines (queues). The file is scratch space, deleted on Dispose; checkpoints export the weights separately.
/// The file is a <see cref="DeviceFile"/> on the run's shared drive.
/// reference: ZeRO-Infinity's parameter swapper (fp16 params in their own NVMe files, apart from optimizer states).
/// </summary>
public sealed class WeightFile : IDisposable
{
    private readonly DeviceFile _file;

    private WeightFile(ElementType type, long elementCount, DeviceFile file)
    {
        ElementType = type;
        ElementCount = elementCount;
        _file = file;
    }

    public string Path => _file.Path;

    public ElementType ElementType { get; }

    public int ElementByteCount => ElementType.ByteCount();

    public long ElementCount { get; }

    public string Description => _file.Description;

    /// <summary>Creates and preallocates the file; a missing directory or too little free space is a <see cref="UserErrorException"/>.</summary>
    public static WeightFile Create(string? directory, ElementType type, long elementCount, IoEngineKind engineKind = IoEngineKind.Auto,
        int queueDepth = IoEngineFactory.DefaultQueueDepth)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elementCount);
        return new WeightFile(type, elementCount, DeviceFile.Create(directory, "weights", elementCount * type.ByteCount(), engineKind, queueDepth));
    }

    /// <summary>Creates and preallocates the file on a shared <paramref name="device"/>; too little free space is a <see cref="UserErrorException"/>.</summary>
    public static WeightFile Create(NvmeDevice device, ElementType type, long elementCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(elementCount);
        return new WeightFile(type, elementCount, device.CreateFile("weights", elementCount * type.ByteCount()));
    }

    /// <summary>The page-aligned byte window [Offset, Offset + ByteCount) of the file that holds elements [first, first + count).</summary>
    public (long Offset, long ByteCount) Window(long first, long count)
    {
        CheckRange(first, count);
        long start = first * ElementByteCount / HostAlignment.PageByteCount * HostAlignment.PageByteCount;
        long end = HostAlignment.RoundUpToPage((first + count) * ElementByteCount);
        return (start, end - start);
    }

    /// <summary>
    /// Reads the window of elements [first, first + count) into <paramref name="buffer"/> from its start; returns the
    /// byte offset of element <paramref name="first"/> in the buffer.
    /// </summary>
    public async ValueTask<long> ReadAsync(long first, long count, AlignedBuffer buffer)
    {
        var (offset, byteCount) = Window(first, count);
        if (buffer.CapacityByteCount < byteCount)
            throw new ArgumentException($"The buffer holds {buffer.CapacityByteCount} bytes but the window of elements [{first}, {first + count}) is {byteCount}.", nameof(buffer));
        await _file.ReadAsync(offset, buffer, 0, byteCount).ConfigureAwait(false);
        return first * ElementByteCount - offset;
    }

    /// <summary>
    /// Writes elements [first, first + count) from the start of <paramref name="buffer"/>. Element
    /// <paramref name="first"/> must begin a page, and the write covers whole pages, so the buffer must hold the
    /// count rounded up to a page; past the last element of the file the padding is scratch.
    /// </summary>
    public ValueTask WriteAsync(long first, long count, AlignedBuffer buffer)
    {
        CheckRange(first, count);
        long offset = first * ElementByteCount;
        if (offset % HostAlignment.PageByteCount != 0)
            throw new ArgumentException($"A weight write must start on a page: element {first} is at byte {offset}.", nameof(first));
        long byteCount = HostAlignment.RoundUpToPage(count * ElementByteCount);
        if (first + count != ElementCount && count * ElementByteCount != byteCount)
            throw new ArgumentException($"A weight write of elements [{first}, {first + count}) would overwrite part of the next page's elements; only the file's last range may end mid-page.", nameof(count));
        if (buffer.CapacityByteCount < byteCount)
            throw new ArgumentException($"The buffer holds {buffer.CapacityByteCount} bytes but the write needs {byteCount}.", nameof(buffer));
        return _file.WriteAsync(offset, buffer, 0, byteCount);
    }

    /// <summary>
    /// Elements [first, first + count) as fp32 into <paramref name="destination"/> (count floats), read through
    /// <paramref name="scratch"/>, which must hold their page window (the optimizer's initial masters).
    /// </summary>
    public unsafe void ReadAsFloat32(long first, long count, nint destination, AlignedBuffer scratch)
    {
        long offset = ReadAsync(first, count, scratch).AsTask().GetAwaiter().GetResult();
        nint source = scratch.Address + (nint)offset;
        var target = (float*)destination;
        for (long i = 0; i < count; i++)
            target[i] = LowPrecision.ToFloat32(ElementType, source, i);
    }

    public void Dispose() => _file.Dispose();

    private void CheckRange(long first, long count)
    {
        if (first < 0 || count <= 0 || first + count > ElementCount)
            throw new ArgumentOutOfRangeException(nameof(first), $"elements [{first}, {first + count}) are outside the file's {ElementCount}.");
    }
}
