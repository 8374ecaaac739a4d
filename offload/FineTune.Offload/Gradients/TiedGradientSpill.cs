using FineTune.Offload.Memory;
using FineTune.Offload.Parameters;
using FineTune.Offload.Rings;
using FineTune.Offload.Storage;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// Where a tied LM head's gradient waits for the embedding's, block by block, when the weight computes in row blocks
/// and the gradients are consumed: on NVMe instead of in host memory (V x C elements, 0.8 GB for Llama-3.2-3B's bf16
/// head). Backward makes the head's contribution first and the embedding's last, and the optimizer needs their sum;
/// each block is written through one pooled staging buffer as autograd made it and read back when its owner adds its
/// own. The bytes are the bf16 (or fp32) gradient itself, so the sum is the one host memory would give, bit for bit.
/// </summary>
public sealed class TiedGradientSpill : IDisposable
{
    private readonly HostLease _staging;
    private readonly DeviceFile _file;
    private readonly DType _dtype;
    private readonly Dictionary<long, (long Offset, long ByteCount)> _extents = new();
    private readonly HashSet<long> _written = new();

    /// <summary>The plan's file size for the blocks of <paramref name="blocks"/> (each at a page-aligned offset).</summary>
    public static long FileByteCount(IEnumerable<LayoutBlock> blocks, long rowElements, DType dtype) =>
        blocks.Sum(b => HostAlignment.RoundUpToPage(b.Rows * rowElements * dtype.ElementByteCount()));

    /// <summary>The staging buffer's size: the largest block.</summary>
    public static long StagingByteCount(IEnumerable<LayoutBlock> blocks, long rowElements, DType dtype) =>
        blocks.Max(b => HostAlignment.RoundUpToPage(b.Rows * rowElements * dtype.ElementByteCount()));

    public TiedGradientSpill(IReadOnlyList<LayoutBlock> blocks, long rowElements, DType dtype, HostLease staging, NvmeDevice device)
    {
        _staging = staging;
        _dtype = dtype;
        long offset = 0;
        foreach (LayoutBlock block in blocks)
        {
            long bytes = HostAlignment.RoundUpToPage(block.Rows * rowElements * dtype.ElementByteCount());
            _extents[block.FirstRow] = (offset, bytes);
            offset += bytes;
        }
        _file = device.CreateFile("tied gradients", offset);
    }

    /// <summary>The spill's NVMe traffic and the time backward waited for it.</summary>
    public TransferCounters Counters { get; } = new();

    public bool Holds(long firstRow) => _written.Contains(firstRow);

    /// <summary>Keeps <paramref name="gradient"/> (the block's rows, (rows, C), in the weights' dtype) until <see cref="Take"/>.</summary>
    public void Put(long firstRow, Tensor gradient)
    {
        var (offset, bytes) = _extents[firstRow];
        using (var scope = TensorScope.Enter())
            scope.Detach(_staging.Buffer.AsTensor(gradient.Shape, _dtype)).CopyFrom(gradient);
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        _file.WriteAsync(offset, _staging.Buffer, 0, bytes).AsTask().GetAwaiter().GetResult();
        Counters.AddWriteWaitSince(start);
        Counters.AddWrite(bytes);
        _written.Add(firstRow);
    }

    /// <summary>The block's kept contribution as a new fp32 tensor of <paramref name="shape"/> (rows, C), ready for the owner to add its own.</summary>
    public Tensor Take(long firstRow, long[] shape)
    {
        var (offset, bytes) = _extents[firstRow];
        if (!_written.Remove(firstRow))
            throw new InvalidOperationException($"No tied gradient is kept for the block at row {firstRow}.");
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        _file.ReadAsync(offset, _staging.Buffer, 0, bytes).AsTask().GetAwaiter().GetResult();
        Counters.AddReadWaitSince(start);
        Counters.AddRead(bytes);
        using var scope = TensorScope.Enter();
        Tensor view = _staging.Buffer.AsTensor(shape, _dtype);
        // a copy that owns its memory (the staging buffer is the next block's): fp32, the sum the accumulators would hold
        return scope.Detach(_dtype == DType.Float32 ? view.Clone() : view.To(DType.Float32));
    }

    /// <summary>A step abandoned half-way: nothing kept is wanted any more.</summary>
    public void Clear() => _written.Clear();

    public void Dispose()
    {
        _file.Dispose();
        _staging.Dispose();
    }
}
