using FineTune.Offload.Memory;
using FineTune.Torch;

namespace FineTune.Offload.DataParallel;

/// <summary>
/// The two host buffers a data-parallel step moves stripes through, rented from the engine's pool (class
/// <see cref="BufferKind.DataParallelStaging"/>), each W x shard fp32 elements: <see cref="Stripe"/> holds one stripe
/// packed in flat order (W slots of <see cref="RankPartition.ShardElementCount"/>; the gradients to reduce-scatter,
/// then the weights to all-gather), and <see cref="Scratch"/> is where the all-to-all of Gloo's reduce-scatter lands.
/// The tensors view the pool's memory; the pool keeps it until the engine is gone, after the process group is (a
/// collective that timed out may still touch it).
/// </summary>
public sealed class StripeBuffers : IDisposable
{
    private readonly HostLease _stripe;
    private readonly HostLease _scratch;

    public StripeBuffers(RankPartition partition, HostMemoryPool pool)
    {
        Partition = partition;
        _stripe = pool.Rent(BufferKind.DataParallelStaging);
        try
        {
            _scratch = pool.Rent(BufferKind.DataParallelStaging);
        }
        catch
        {
            _stripe.Dispose();
            throw;
        }
        if (_stripe.ByteCount < ByteCount(partition))
            throw new ArgumentException($"The pool's data-parallel staging buffers hold {_stripe.ByteCount} bytes; a stripe needs {ByteCount(partition)}.", nameof(pool));
    }

    /// <summary>Adds the two stripe buffers to <paramref name="plan"/>.</summary>
    public static void AddToPlan(PoolPlan plan, RankPartition partition) => plan.Add(BufferKind.DataParallelStaging, ByteCount(partition), 2);

    /// <summary>W x shard fp32: the largest stripe with every slot full.</summary>
    public static long ByteCount(RankPartition partition) => 4L * partition.WorldSize * partition.ShardElementCount;

    public RankPartition Partition { get; }

    public unsafe nint Stripe => (nint)_stripe.Pointer;

    public unsafe nint Scratch => (nint)_scratch.Pointer;

    /// <summary>A (count) view of the stripe buffer from byte <paramref name="byteOffset"/>, as <paramref name="dtype"/>.</summary>
    public Tensor StripeView(long byteOffset, long count, DType dtype) => Torch.Torch.FromPointer(Stripe + (nint)byteOffset, [count], dtype);

    public Tensor ScratchView(long count, DType dtype) => Torch.Torch.FromPointer(Scratch, [count], dtype);

    public void Dispose()
    {
        _scratch.Dispose();
        _stripe.Dispose();
    }
}
