using FineTune.IO;
using FineTune.Torch;

namespace FineTune.Offload.Memory;

/// <summary>
/// A tensor over an aligned buffer's memory (no copy; valid while the buffer lives), so that layers above offload
/// hand staging memory to libtorch without pointer arithmetic of their own.
/// </summary>
public static class BufferTensors
{
    /// <summary>A <paramref name="dtype"/> tensor of <paramref name="shape"/> over the buffer's first bytes (they must hold it).</summary>
    public static Tensor AsTensor(this AlignedBuffer buffer, long[] shape, DType dtype)
    {
        long bytes = shape.Aggregate(1L, (a, b) => a * b) * dtype.ElementByteCount();
        if (bytes > buffer.CapacityByteCount)
            throw new ArgumentException($"A {string.Join("x", shape)} {dtype} tensor needs {bytes} bytes; the buffer holds {buffer.CapacityByteCount}.", nameof(shape));
        return FineTune.Torch.Torch.FromPointer(buffer.Address, shape, dtype);
    }
}
