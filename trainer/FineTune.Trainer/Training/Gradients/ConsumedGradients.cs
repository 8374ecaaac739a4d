using FineTune.Offload.Gradients;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Gradients;

/// <summary>
/// One micro-batch per step, updates overlapped with backward: when backward leaves a stage, the gradients of the
/// parameters it owns are final and are handed to the <see cref="StreamedGradients"/> the optimizer reads (no copy:
/// autograd's .grad itself), then freed once their sub-groups are updated. A weight that an earlier stage of backward
/// also used (a tied LM head) collects that stage's contribution in an fp32 tensor until its owner adds its own, the
/// same fp32 sum the accumulators would hold, so the result is bit-identical to <see cref="AccumulatedGradients"/>.
/// </summary>
internal sealed class ConsumedGradients : IGradientHarvest
{
    private readonly LlamaModel _model;
    private readonly ParameterLayout _layout;
    private readonly StreamedGradients _streamed;
    private readonly Tensor?[] _pending;

    private readonly Func<int, long> _publishedByteCount;

    public ConsumedGradients(LlamaModel model, ParameterLayout layout, long maxOutstandingByteCount, Func<int, long> publishedByteCount)
    {
        _model = model;
        _layout = layout;
        _publishedByteCount = publishedByteCount;
        _streamed = new StreamedGradients(layout, maxOutstandingByteCount);
        _pending = new Tensor?[layout.Parameters.Count];
    }

    public GradientTier Tier => GradientTier.Consumed;

    public IGradientSource Source => _streamed;

    /// <summary>Peak bytes of gradients alive at once (published and not yet consumed).</summary>
    public long PeakOutstandingByteCount => _streamed.PeakOutstandingByteCount;

    public nint Address(int parameter) => 0;

    public void BeginMicroBatch() { }

    public void StageDone(int stage, StageWeights weights, bool firstMicroBatch)
    {
        LayoutStage owner = _layout.Stages[stage];
        _streamed.WaitForRoom(owner.Owned.Sum(_publishedByteCount));
        using (FineTune.Torch.Torch.NoGrad())
        {
            foreach (int p in owner.Uses)
            {
                Tensor weight = weights[_model.Parameters[p]];
                Tensor? grad = weight.Grad;
                weight.Grad = null;
                if (!owner.Owned.Contains(p))
                {
                    // a contribution before the owner's: keep it in fp32 (copy first, add after), as an accumulator would
                    if (_pending[p] is Tensor sum)
                    {
                        if (grad is not null)
                            sum.AddInPlace(grad);
                    }
                    else
                    {
                        _pending[p] = Owned(grad?.To(DType.Float32).Contiguous() ?? FineTune.Torch.Torch.Zeros(weight.Shape));
                    }
                    grad?.Dispose();
                    continue;
                }
                Tensor final;
                if (_pending[p] is Tensor pending)
                {
                    if (grad is not null)
                        pending.AddInPlace(grad);
                    grad?.Dispose();
                    final = pending;
                    _pending[p] = null;
                }
                else
                {
                    final = grad is null ? Owned(FineTune.Torch.Torch.Zeros(weight.Shape, weight.DType)) : Owned(grad.Contiguous());
                    if (grad is not null && !ReferenceEquals(final, grad))
                        grad.Dispose();
                }
                _streamed.Publish(p, final);
            }
        }
    }

    public void EndStep()
    {
        _streamed.Clear();
        for (int p = 0; p < _pending.Length; p++)
        {
            _pending[p]?.Dispose();
            _pending[p] = null;
        }
    }

    public void Dispose() => EndStep();

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;
}
