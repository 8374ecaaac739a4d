using System.Runtime.InteropServices;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Swap;

/// <summary>
/// An <see cref="ISwapStore"/> in host memory (one native allocation per extent): the same pipeline as NVMe with
/// memcpy for I/O. Used by tests as the reference that NVMe results must equal bit for bit. Copies run on the
/// thread pool so reads and writes overlap the update as real I/O does.
/// </summary>
public sealed unsafe class MemorySwapStore : ISwapStore
{
    private readonly byte*[] _extents;
    private readonly long[] _byteCounts;
    private long _bytesRead;
    private long _bytesWritten;

    public MemorySwapStore(IReadOnlyList<long> extentByteCounts)
    {
        _byteCounts = extentByteCounts.Select(HostAlignment.RoundUpToPage).ToArray();
        _extents = new byte*[_byteCounts.Length];
        for (int i = 0; i < _extents.Length; i++)
            _extents[i] = (byte*)NativeMemory.AllocZeroed((nuint)_byteCounts[i]);
    }

    public string Description => "memory";

    public int ExtentCount => _extents.Length;

    public long ExtentByteCount(int extent) => _byteCounts[extent];

    /// <summary>Bytes copied in and out (tests compare them with the pipeline's counters).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    public long BytesWritten => Interlocked.Read(ref _bytesWritten);

    public ValueTask ReadAsync(int extent, HostLease buffer)
    {
        byte* source = _extents[extent], target = buffer.Pointer;
        long byteCount = Check(extent, buffer);
        return new ValueTask(Task.Run(() =>
        {
            Buffer.MemoryCopy(source, target, byteCount, byteCount);
            Interlocked.Add(ref _bytesRead, byteCount);
        }));
    }

    public ValueTask WriteAsync(int extent, HostLease buffer)
    {
        byte* source = buffer.Pointer, target = _extents[extent];
        long byteCount = Check(extent, buffer);
        return new ValueTask(Task.Run(() =>
        {
            Buffer.MemoryCopy(source, target, byteCount, byteCount);
            Interlocked.Add(ref _bytesWritten, byteCount);
        }));
    }

    private long Check(int extent, HostLease buffer)
    {
        long byteCount = _byteCounts[extent];
        if (buffer.BackingByteCount < byteCount)
            throw new ArgumentException($"A {buffer.BackingByteCount}-byte buffer cannot hold extent {extent} ({byteCount} bytes).", nameof(buffer));
        return byteCount;
    }

    public void Dispose()
    {
        for (int i = 0; i < _extents.Length; i++)
        {
            NativeMemory.Free(_extents[i]);
            _extents[i] = null;
        }
    }
}
