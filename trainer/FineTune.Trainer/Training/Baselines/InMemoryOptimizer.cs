using FineTune.Offload.Adam;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Baselines;

/// <summary>
/// The in-memory baseline: libtorch's AdamW over ordinary tensors. fp32 models are updated in place; bf16/fp16
/// models get fp32 master copies that AdamW updates and that are copied back into the model after each step.
/// Gradients stay in the parameters' .grad (autograd accumulates micro-batches); <see cref="Step"/> computes the
/// global norm (the same fp64 pass as the offloaded optimizer), skips on a non-finite norm, folds unscale and clip
/// into the gradients and clears them. reference: torch.nn.utils.clip_grad_norm_ (max_norm / (norm + 1e-6)).
/// </summary>
internal sealed class InMemoryOptimizer : IDisposable
{
    private readonly LlamaModel _model;
    private readonly AdamWOptions _options;
    private readonly Tensor[]? _masters;
    private readonly TorchAdamW _adam;

    public InMemoryOptimizer(LlamaModel model, AdamWOptions options)
    {
        _model = model;
        _options = options;
        if (model.DType != DType.Float32)
        {
            using (FineTune.Torch.Torch.NoGrad())
                _masters = model.Parameters.Select(p => Owned(p.Tensor.To(DType.Float32).Clone())).ToArray();
            foreach (Tensor master in _masters)
                master.RequiresGrad = true;
        }
        Tensor[] trained = _masters ?? model.Parameters.Select(p => p.Tensor).ToArray();
        _adam = new TorchAdamW(trained, options.LearningRate, options.Beta1, options.Beta2, options.Epsilon, options.WeightDecay);
    }

    /// <summary>Unscale, clip and update; returns (skipped, unscaled norm). Gradients are cleared either way.</summary>
    public (bool Skipped, double Norm) Step(double learningRate, double lossScale)
    {
        using var scope = TensorScope.Enter();
        var grads = new List<Tensor>();
        for (int i = 0; i < _model.Parameters.Count; i++)
        {
            Tensor parameter = _model.Parameters[i].Tensor;
            Tensor? grad = parameter.Grad;
            if (grad is null)
                continue;
            if (_masters is not null)
            {
                Tensor fp32 = grad.To(DType.Float32).Contiguous();
                _masters[i].Grad = fp32;
                grad = fp32;
            }
            grads.Add(grad.Contiguous());
        }
        double sum = GradientNorm.SumOfSquares(grads.Select(g => (g.DataPointer, ElementType.Float32, g.NumElements)).ToList());
        double norm = Math.Sqrt(sum) / lossScale;
        bool skipped = !double.IsFinite(norm);
        if (!skipped)
        {
            double clip = _options.MaxGradNorm > 0 ? Math.Min(1.0, _options.MaxGradNorm / (norm + 1e-6)) : 1.0;
            double multiplier = clip / lossScale;
            if (multiplier != 1.0)
            {
                using (FineTune.Torch.Torch.NoGrad())
                    foreach (Tensor grad in grads)
                        grad.MulInPlace(multiplier);
            }
            _adam.LearningRate = learningRate;
            _adam.Step();
            if (_masters is not null)
            {
                using (FineTune.Torch.Torch.NoGrad())
                    for (int i = 0; i < _masters.Length; i++)
                        _model.Parameters[i].Tensor.CopyFrom(_masters[i]);
            }
        }
        _model.ClearGrads();
        if (_masters is not null)
            foreach (Tensor master in _masters)
                master.Grad = null;
        return (skipped, norm);
    }

    public void Dispose()
    {
        _adam.Dispose();
        if (_masters is not null)
            foreach (Tensor master in _masters)
                master.Dispose();
    }

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;
}
