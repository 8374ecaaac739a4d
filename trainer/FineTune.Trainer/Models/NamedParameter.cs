using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// One parameter of the model under its HF name. The tensor may be replaced (the training step swaps in weights
/// it streamed from host or NVMe) but only by one of the declared shape, so a layer never sees a wrong shape.
/// The parameter owns the tensor it holds: replacing or disposing it disposes the previous one.
/// With parameter offload the training engine evicts the tensor between uses (<see cref="IsResident"/> false); reading
/// it then throws, naming the way to reach the weights (<see cref="LlamaModel.UseWeights"/>).
/// </summary>
public sealed class NamedParameter : IDisposable
{
    private Tensor? _tensor;

    public NamedParameter(ParameterSpec spec, Tensor tensor)
    {
        Spec = spec;
        CheckShape(tensor);
        _tensor = tensor;
    }

    /// <summary>A parameter whose weights are not resident yet (<see cref="LlamaModel.Open"/>: read on use).</summary>
    internal NamedParameter(ParameterSpec spec) => Spec = spec;

    public ParameterSpec Spec { get; }

    public string Name => Spec.Name;

    /// <summary>The weights, (Spec.Shape) in the model's dtype on the model's device.</summary>
    public Tensor Tensor
    {
        get => _tensor ?? throw new InvalidOperationException(
            $"{Name} is not resident (the weights stay in the checkpoint or the training engine's NVMe file until used); run the model through model.Forward or wrap the access in model.UseWeights. " +
            "After an engine built with RestoreWeightsOnDispose = false is disposed the weights are gone: load the checkpoint you saved.");
        set
        {
            CheckShape(value);
            if (!ReferenceEquals(value, _tensor))
                _tensor?.Dispose();
            _tensor = value;
        }
    }

    /// <summary>False while the training engine keeps this parameter off the compute device (parameter offload).</summary>
    public bool IsResident => _tensor is not null;

    /// <summary>Frees the tensor; the weights live elsewhere until the next assignment.</summary>
    internal void Evict()
    {
        _tensor?.Dispose();
        _tensor = null;
    }

    public void Dispose() => Evict();

    private void CheckShape(Tensor tensor)
    {
        long[] shape = tensor.Shape;
        if (!shape.SequenceEqual(Spec.Shape))
            throw new ArgumentException($"{Name} must have shape {Spec.ShapeText}, got [{string.Join(", ", shape)}].");
    }
}
