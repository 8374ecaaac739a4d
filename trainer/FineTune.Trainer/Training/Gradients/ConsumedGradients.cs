using FineTune.Offload.Gradients;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Gradients;

/// <summary>
/// One micro-batch per step, updates overlapped with backward: when backward leaves a stage (or one row block of a
/// blocked edge weight), the gradients of the parameters it owns are final and are handed to the
/// <see cref="StreamedGradients"/> the optimizer reads (no copy: autograd's .grad itself), then freed once their
/// sub-groups are updated. A weight that an earlier stage of backward also used (a tied LM head) collects that stage's
/// contribution until its owner adds its own into the same fp32 sum the accumulators would hold, so the result is
/// bit-identical to <see cref="AccumulatedGradients"/>. The final gradients go to an <see cref="IGradientSink"/>: kept in
/// host memory for the overlapped update (<see cref="StreamedGradients"/>), or written to NVMe for an update that waits
/// for the norm (<see cref="SpilledGradients"/>, <see cref="GradientTier.Nvme"/>).
/// </summary>
internal sealed class ConsumedGradients : IGradientHarvest
{
    private readonly LlamaModel _model;
    private readonly ParameterLayout _layout;
    private readonly IGradientSink _streamed;
    private readonly Dictionary<(int Parameter, long FirstRow), Tensor> _pending = new();
    private readonly Func<int, long> _publishedByteCount;

    private readonly TiedGradientSpill? _spill;

    /// <param name="spill">Where a tied LM head's blocks wait for the embedding's (NVMe); null keeps them in host memory.</param>
    /// <param name="onNvme">Where the final gradients go for an update that waits for the norm; null: the overlapped update reads them in host memory.</param>
    /// <param name="holdFrom">The flat element from which gradients are held for the update's pass under the next forward (none: long.MaxValue).</param>
    /// <param name="carryWeights">Each published gradient takes a copy of its weights as backward used them, for the update of residual masters.</param>
    /// <param name="carryHeldWeights">The held gradients too.</param>
    public ConsumedGradients(LlamaModel model, ParameterLayout layout, long maxOutstandingByteCount, Func<int, long> publishedByteCount, TiedGradientSpill? spill = null,
        SpilledGradients? onNvme = null, long holdFrom = long.MaxValue, bool carryWeights = false, bool carryHeldWeights = false)
    {
        _spill = spill;
        _model = model;
        _layout = layout;
        _publishedByteCount = publishedByteCount;
        _streamed = onNvme ?? (IGradientSink)new StreamedGradients(layout, maxOutstandingByteCount, holdFrom, carryWeights, carryHeldWeights);
        _onNvme = onNvme;
    }

    private readonly SpilledGradients? _onNvme;

    public GradientTier Tier => _onNvme is null ? GradientTier.Consumed : GradientTier.Nvme;

    public IGradientSource Source => _streamed;

    /// <summary>Seconds backward has waited so far for the optimizer to consume gradients (their bound was full).</summary>
    public double OptimizerWaitSeconds => _streamed.RoomWaitSeconds;

    /// <summary>Peak bytes of gradients alive at once (published and not yet consumed).</summary>
    public long PeakOutstandingByteCount => _streamed.PeakOutstandingByteCount;

    public nint Address(int parameter) => 0;

    public void BeginMicroBatch() { }

    public void StageDone(int stage, LayoutBlock? block, StageWeights? weights, bool firstMicroBatch)
    {
        LayoutStage owner = _layout.Stages[stage];
        using (FineTune.Torch.Torch.NoGrad())
        {
            if (block is not null)
            {
                Tensor? weight = weights?[_model.Parameters[block.Parameter]];
                long rowElements = _layout.Parameters[block.Parameter].ElementCount / _layout.Parameters[block.Parameter].Shape[0];
                Take(block.Parameter, block.FirstRow, [block.Rows, rowElements], weight, owner.Owned.Contains(block.Parameter),
                    (_layout.FlatOffset(block.Parameter) + block.FirstRow * rowElements, block.Rows * rowElements));
                return;
            }
            if (_layout.OwnedFirstElement(stage) is long first)
                _streamed.SetBoundary(first + owner.Owned.Sum(p => _layout.Parameters[p].ElementCount)); // everything above this stage is final
            _streamed.WaitForRoom(owner.Owned.Sum(_publishedByteCount));
            foreach (int p in owner.Uses)
            {
                Tensor weight = weights![_model.Parameters[p]];
                Take(p, -1, weight.Shape, weight, owner.Owned.Contains(p), null);
            }
        }
        if (_layout.OwnedFirstElement(stage) is long boundary)
            _streamed.SetBoundary(boundary);
    }

    /// <summary>
    /// One gradient (a whole parameter, or rows of one: <paramref name="firstRow"/> &gt;= 0) out of autograd: kept in fp32
    /// for the owner when this stage only contributes, else final and published (with what earlier stages contributed).
    /// </summary>
    private void Take(int parameter, long firstRow, long[] shape, Tensor? weight, bool owned, (long First, long Count)? flat)
    {
        Tensor? grad = weight?.Grad;
        if (weight is not null)
            weight.Grad = null;
        var key = (parameter, firstRow);
        if (!owned && _spill is not null && firstRow >= 0 && grad is not null && !_spill.Holds(firstRow) && !_pending.ContainsKey(key))
        {
            _spill.Put(firstRow, grad.Contiguous()); // the head's block, until the embedding's backward adds its own
            grad.Dispose();
            return;
        }
        if (!owned)
        {
            // a contribution before the owner's: the first is kept as autograd made it (a bf16 gradient read as fp32 is
            // exact, so the owner's fp32 sum is the accumulator's: half the bytes of an fp32 copy for a tied LM head),
            // a second one turns it into the fp32 sum an accumulator would hold
            if (_pending.TryGetValue(key, out Tensor? sum))
            {
                if (grad is not null)
                {
                    if (sum.DType != DType.Float32)
                    {
                        Tensor wide = Float32Copy(sum);
                        sum.Dispose();
                        _pending[key] = sum = wide;
                    }
                    sum.AddInPlace(grad);
                }
                grad?.Dispose();
            }
            else
            {
                _pending[key] = grad is null ? Owned(FineTune.Torch.Torch.Zeros(shape)) : Owned(grad.Contiguous());
                if (grad is not null && !ReferenceEquals(_pending[key], grad))
                    grad.Dispose();
            }
            return;
        }
        if (flat is { } above)
        {
            // a block: everything above it is final; room for it (and the weights it may carry) before its fp32 sum is made
            _streamed.SetBoundary(above.First + above.Count);
            _streamed.WaitForRoom(_publishedByteCount(parameter) / _layout.Parameters[parameter].Shape[0] * shape[0]);
        }
        Tensor final;
        if (_spill is not null && firstRow >= 0 && _spill.Holds(firstRow))
        {
            final = Owned(_spill.Take(firstRow, shape));
            if (grad is not null)
                final.AddInPlace(grad);
            grad?.Dispose();
        }
        else if (_pending.Remove(key, out Tensor? pending))
        {
            final = pending.DType == DType.Float32 ? pending : Float32Copy(pending);
            if (!ReferenceEquals(final, pending))
                pending.Dispose();
            if (grad is not null)
                final.AddInPlace(grad);
            grad?.Dispose();
        }
        else
        {
            final = grad is null ? Owned(FineTune.Torch.Torch.Zeros(shape, _model.DType)) : Owned(grad.Contiguous());
            if (grad is not null && !ReferenceEquals(final, grad))
                grad.Dispose();
        }
        if (flat is { } range)
        {
            _streamed.Publish(parameter, firstRow * (range.Count / shape[0]), final, weight);
            _streamed.SetBoundary(range.First);
            return;
        }
        _streamed.Publish(parameter, 0, final, weight);
    }

    /// <summary>The NVMe traffic of the gradients: a tied gradient's spill and the gradients on NVMe, as they are.</summary>
    public FineTune.Offload.Rings.TransferSnapshot SpillTraffic =>
        (_spill?.Counters.Snapshot() ?? default) + (_onNvme?.Counters.Snapshot() ?? default);

    public void EndStep()
    {
        _spill?.Clear();
        _streamed.EndStep();
        foreach (Tensor pending in _pending.Values)
            pending.Dispose();
        _pending.Clear();
    }

    /// <summary>A failed step: everything published is let go, the gradients held for the update's later pass too.</summary>
    public void Abandon()
    {
        EndStep();
        (_streamed as StreamedGradients)?.Clear();
    }

    public void Dispose()
    {
        Abandon();
        _spill?.Dispose();
        _onNvme?.Dispose();
    }

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;

    /// <summary>
    /// An fp32 copy that only its owner holds: made in a scope of its own, so no handle to it stays in the caller's
    /// scope (the micro-batch's, which would keep every block's copy alive until backward ends).
    /// </summary>
    private static Tensor Float32Copy(Tensor tensor)
    {
        using var scope = TensorScope.Enter();
        return scope.Detach(tensor.To(DType.Float32).Contiguous());
    }
}
