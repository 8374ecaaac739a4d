using System.Diagnostics;
using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Torch.Distributed;

namespace FineTune.Offload.DataParallel;

/// <summary>
/// The gradients a rank's optimizer reads under ZeRO: every rank accumulates its own micro-batches' fp32 gradients of
/// the whole model in its accumulators (each parameter at its own address, 64-byte aligned), then
/// <see cref="ReduceScatter"/> sums them over ranks stripe by stripe: the stripe's W sub-groups are packed in flat order
/// into the stripe buffer (a short or missing last sub-group padded with zeros), reduce-scattered (fp32: Gloo's
/// all-to-all then a sum in rank order, so every rank's sum is the same bits run after run), and this rank's slot
/// — the sum of its own sub-group over every rank — is unpacked back into its accumulators. The other sub-groups'
/// accumulators keep this rank's local sums, which nothing reads: the optimizer holds only owned sub-groups.
/// The global norm is the square root of the sum over ranks (an all-reduce of one double) of each rank's sum of squares
/// over its owned sub-groups (fp64, fixed 64 Ki chunks); a NaN or infinity anywhere makes it non-finite on every
/// rank, so the overflow check needs no collective of its own and every rank skips the same steps.
/// Each loss is a rank's token losses over the global batch's token count, so the sum is the 1-rank gradient.
/// Not thread-safe; every rank calls the collectives in the same order.
/// </summary>
public sealed class ReducedGradients : IGradientSource
{
    private readonly RankPartition _partition;
    private readonly Func<int, nint> _accumulator;
    private readonly ProcessGroup _group;
    private readonly StripeBuffers _buffers;
    private readonly CollectiveCounters _counters;

    /// <param name="accumulator">The fp32 accumulator of each parameter (its element 0).</param>
    public ReducedGradients(RankPartition partition, Func<int, nint> accumulator, ProcessGroup group, StripeBuffers buffers, CollectiveCounters counters)
    {
        _partition = partition;
        _accumulator = accumulator;
        _group = group;
        _buffers = buffers;
        _counters = counters;
    }

    /// <summary>Sums every stripe's gradients over the ranks into the owners' accumulators (after the last backward).</summary>
    public unsafe void ReduceScatter()
    {
        int w = _partition.WorldSize;
        long shard = _partition.ShardElementCount;
        using Tensor stripe = _buffers.StripeView(0, w * shard, DType.Float32);
        using Tensor mine = _buffers.StripeView(4 * _partition.Rank * shard, shard, DType.Float32);
        using Tensor scratch = _buffers.ScratchView(w * shard, DType.Float32);
        var packed = (float*)_buffers.Stripe;
        for (int s = 0; s < _partition.StripeCount; s++)
        {
            for (int slot = 0; slot < w; slot++)
            {
                float* target = packed + slot * shard;
                SubGroup? group = _partition.InStripe(s, slot);
                long filled = 0;
                if (group is not null)
                {
                    foreach (SubGroupSegment segment in group.Segments)
                        Copy((float*)Segment(segment), target + segment.GroupOffset, segment.ElementCount);
                    filled = group.ElementCount;
                }
                new Span<float>(target + filled, checked((int)(shard - filled))).Clear();
            }
            long start = Stopwatch.GetTimestamp();
            // the output is this rank's slot of the input: in place for NCCL, and every Gloo fallback reads the input before it writes there
            _group.ReduceScatter(stripe, mine, ReduceOp.Sum, scratch: scratch);
            _counters.AddReduceScatter(4 * w * shard, start);
            if (s < _partition.Owned.Count)
                foreach (SubGroupSegment segment in _partition.Owned[s].Segments)
                    Copy(packed + _partition.Rank * shard + segment.GroupOffset, (float*)Segment(segment), segment.ElementCount);
        }
    }

    public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment) => (Segment(segment), ElementType.Float32);

    /// <summary>The global sum of squares: this rank's owned sub-groups, then an all-reduce over ranks.</summary>
    public double SumOfSquares(int maxDegreeOfParallelism)
    {
        var buffers = _partition.Owned.SelectMany(g => g.Segments).Select(s => (Segment(s), ElementType.Float32, s.ElementCount)).ToList();
        Span<double> total = [GradientNorm.SumOfSquares(buffers, maxDegreeOfParallelism)];
        long start = Stopwatch.GetTimestamp();
        _group.AllReduce(total);
        _counters.AddAllReduce(8, start);
        return total[0];
    }

    private nint Segment(SubGroupSegment segment) => _accumulator(segment.Parameter) + (nint)(segment.ParameterOffset * 4);

    private static unsafe void Copy(float* source, float* target, long count) =>
        Buffer.MemoryCopy(source, target, count * 4, count * 4);
}
