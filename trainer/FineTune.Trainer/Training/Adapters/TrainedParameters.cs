using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// What a LoRA step trains, all resident on the CPU: every adapter's A (r, in) and B (out, r) in float32 (the
/// adapters' own tensors), then the base parameters trained in full (model.lora.trainable) as tensors of the
/// model's dtype that replace the frozen copies in the layers' weight leases. Each is a leaf that requires grad and
/// has an fp32 gradient buffer of its shape: <see cref="Harvest"/> moves autograd's .grad there after every
/// micro-batch (copy on the window's first, add after), and the optimizer reads the buffers
/// (<see cref="HostParameters"/>: weights updated in place, fp32 masters in the optimizer's states). The base's other
/// parameters have no entry here: no gradient, no master, no state.
/// Owns the extras' tensors and every gradient buffer; the adapters' A and B belong to their <see cref="LoraAdapters"/>.
/// </summary>
internal sealed class TrainedParameters : IDisposable
{
    private readonly Dictionary<NamedParameter, Tensor> _extras = [];
    private readonly List<(string Name, Tensor Weight, Tensor Gradient)> _trained = [];

    /// <param name="model">The base model; its parameters named by the adapters' trainable list are trained.</param>
    /// <param name="adapters">The adapters (float32, CPU).</param>
    /// <param name="initial">A base parameter's starting value when the model does not hold it resident (read from the engine's store).</param>
    public TrainedParameters(LlamaModel model, LoraAdapters adapters, Func<NamedParameter, Tensor> initial)
    {
        try
        {
            foreach (NamedParameter p in adapters.Parameters)
            {
                if (!p.Tensor.Device.IsCpu || p.Tensor.DType != DType.Float32 || !p.Tensor.IsContiguous)
                    throw new ArgumentException($"{p.Name} must be a contiguous float32 CPU tensor to train.", nameof(adapters));
                Add(p.Name, p.Tensor);
            }
            var names = new HashSet<string>(adapters.TrainableBaseParameterNames, StringComparer.Ordinal);
            foreach (NamedParameter p in model.Parameters.Where(p => names.Contains(p.Name)))
            {
                Tensor working;
                using (TensorScope.Enter())
                using (FineTune.Torch.Torch.NoGrad())
                {
                    // the model's own tensor stays the model's; a copy read from the store dies with this scope
                    Tensor start = p.IsResident ? p.Tensor : TensorScope.Current!.Include(initial(p));
                    working = start.Detach().To(Device.Cpu, model.DType).Contiguous().Clone().MoveToOuterScope();
                }
                working = TensorScope.Current?.Detach(working) ?? working;
                working.RequiresGrad = true;
                _extras[p] = working;
                Add(p.Name, working);
            }
            TrainsEmbedding = names.Contains(LlamaTensorNames.Embedding);
            HostParameters = _trained.Select(t => HostParameter.FromTensors(t.Name, t.Weight, t.Gradient)).ToArray();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Every trained tensor as the optimizer sees it: adapters in adapter order, then the extras in model order.</summary>
    public IReadOnlyList<HostParameter> HostParameters { get; } = [];

    /// <summary>True when the embedding trains in full (its backward must run).</summary>
    public bool TrainsEmbedding { get; }

    /// <summary>Elements trained.</summary>
    public long ElementCount => _trained.Sum(t => t.Weight.NumElements);

    /// <summary>The trained tensor that stands in for base parameter <paramref name="parameter"/>, when it trains.</summary>
    public bool TryGetExtra(NamedParameter parameter, out Tensor tensor) => _extras.TryGetValue(parameter, out tensor!);

    /// <summary>
    /// After a micro-batch's backward: every .grad into its fp32 buffer (overwrite when <paramref name="first"/>,
    /// else add; a tensor without a gradient is zeroed on an overwrite), then cleared.
    /// </summary>
    public void Harvest(bool first)
    {
        using (FineTune.Torch.Torch.NoGrad())
        {
            foreach (var (_, weight, gradient) in _trained)
            {
                using Tensor? grad = weight.Grad;
                if (grad is null)
                {
                    if (first)
                        gradient.FillInPlace(0);
                    continue;
                }
                if (first)
                    gradient.CopyFrom(grad);
                else
                    gradient.AddInPlace(grad);
                weight.Grad = null;
            }
        }
    }

    /// <summary>Drops any .grad left by a failed micro-batch.</summary>
    public void ClearGrads()
    {
        foreach (var (_, weight, _) in _trained)
            weight.Grad = null;
    }

    public void Dispose()
    {
        foreach (Tensor extra in _extras.Values)
            extra.Dispose();
        foreach (var (_, _, gradient) in _trained)
            gradient.Dispose();
        _extras.Clear();
        _trained.Clear();
    }

    private void Add(string name, Tensor weight)
    {
        Tensor gradient = FineTune.Torch.Torch.Zeros(weight.Shape, DType.Float32);
        _trained.Add((name, weight, TensorScope.Current?.Detach(gradient) ?? gradient));
    }
}
