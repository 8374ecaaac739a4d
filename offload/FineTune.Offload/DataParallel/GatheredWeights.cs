using System.Diagnostics;
using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Torch.Distributed;

namespace FineTune.Offload.DataParallel;

/// <summary>
/// The weight write-back of a rank's optimizer under ZeRO: the rank updates only the sub-groups it owns, and every
/// rank needs all the updated weights before the next forward. <see cref="Rent"/> hands the fused AdamW pass this
/// rank's slot of the stripe buffer; <see cref="Commit"/> all-gathers the stripe (bytes: Gloo cannot carry bf16, and a
/// gather needs no arithmetic, so the weights move as uint8) and writes all W sub-groups of it into the
/// <see cref="ParameterStore"/>: in place when the weights are resident, through the store's own write-back to its
/// weight file on NVMe. Rank r owns the sub-group of every stripe but perhaps the last, and updates its own in
/// ascending order, so committing owned sub-group i gathers stripe i; <see cref="Flush"/> gathers the stripes left
/// (the last one, where this rank has no sub-group: its slot is sent but nobody reads it) once a pass has started,
/// so every rank runs the same collectives in the same order: after a step, a checkpoint load, never after a
/// skipped step (no sub-group was committed on any rank). Sub-groups must be committed in ascending order.
/// </summary>
public sealed class GatheredWeights : IWeightWriteBack
{
    private readonly RankPartition _partition;
    private readonly ParameterStore _store;
    private readonly ProcessGroup _group;
    private readonly StripeBuffers _buffers;
    private readonly CollectiveCounters _counters;
    private readonly int _elementBytes;
    private readonly List<Task> _writes = new();
    private int _nextStripe;

    public GatheredWeights(RankPartition partition, ParameterStore store, ProcessGroup group, StripeBuffers buffers, CollectiveCounters counters)
    {
        _partition = partition;
        _store = store;
        _group = group;
        _buffers = buffers;
        _counters = counters;
        _elementBytes = store.Layout.WeightType.ByteCount();
    }

    public ElementType WeightType => _store.Layout.WeightType;

    /// <summary>This rank's slot of the stripe buffer, for owned sub-group <paramref name="group"/> (re-indexed: its stripe is its index).</summary>
    public nint Rent(SubGroup group) => _buffers.Stripe + (nint)(_partition.Rank * _partition.ShardElementCount * _elementBytes);

    /// <summary>Gathers every stripe up to <paramref name="group"/>'s and writes them into the store; returns their writes.</summary>
    public Task Commit(SubGroup group)
    {
        if (group.Index < _nextStripe)
            throw new InvalidOperationException($"Owned sub-group {group.Index} was committed after stripe {_nextStripe - 1}: ranks must update their sub-groups in ascending order.");
        int firstWrite = _writes.Count;
        while (_nextStripe <= group.Index)
            Gather(_nextStripe++);
        return Task.WhenAll(_writes.Skip(firstWrite));
    }

    /// <summary>
    /// The first fp32 masters of owned sub-group <paramref name="group"/>, from the store's weights (every rank starts
    /// from the same ones): given to the optimizer as its initial masters, so creating it rewrites and gathers nothing.
    /// </summary>
    public unsafe void ReadMasters(SubGroup group, nint master)
    {
        if (_store.Tier == WeightTier.Nvme)
        {
            _store.ReadMasters(group, master);
            return;
        }
        var masters = (float*)master;
        foreach (SubGroupSegment segment in group.Segments)
        {
            nint weights = _store.WeightAddress(segment.Parameter);
            for (long i = 0; i < segment.ElementCount; i++)
                masters[segment.GroupOffset + i] = LowPrecision.ToFloat32(WeightType, weights, segment.ParameterOffset + i);
        }
    }

    /// <summary>Gathers the stripes a started pass has left, then waits for every weight write.</summary>
    public void Flush()
    {
        if (_nextStripe > 0)
            while (_nextStripe < _partition.StripeCount)
                Gather(_nextStripe++);
        _nextStripe = 0;
        _store.WriteBack?.Flush();
        _writes.Clear();
    }

    private unsafe void Gather(int stripe)
    {
        int w = _partition.WorldSize;
        long shardBytes = _partition.ShardElementCount * _elementBytes;
        using (Tensor all = _buffers.StripeView(0, w * shardBytes, DType.UInt8))
        using (Tensor mine = _buffers.StripeView(_partition.Rank * shardBytes, shardBytes, DType.UInt8))
        {
            long start = Stopwatch.GetTimestamp();
            _group.AllGather(mine, all);
            _counters.AddAllGather(w * shardBytes, start);
        }
        for (int slot = 0; slot < w; slot++)
        {
            if (_partition.InStripe(stripe, slot) is not SubGroup group)
                continue;
            byte* source = (byte*)_buffers.Stripe + slot * shardBytes;
            if (_store.WriteBack is { } file)
            {
                nint target = file.Rent(group);
                Buffer.MemoryCopy(source, (void*)target, group.ElementCount * _elementBytes, group.ElementCount * _elementBytes);
                _writes.Add(file.Commit(group));
                continue;
            }
            foreach (SubGroupSegment segment in group.Segments)
            {
                long bytes = segment.ElementCount * _elementBytes;
                Buffer.MemoryCopy(source + segment.GroupOffset * _elementBytes, (void*)(_store.WeightAddress(segment.Parameter) + (nint)(segment.ParameterOffset * _elementBytes)), bytes, bytes);
            }
        }
    }
}
