using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// One parameter of the model under its HF name, and the model's own resident tensor for it when there is one. The
/// tensor may be replaced, but only by one of the declared shape, so a layer never sees a wrong shape; the parameter
/// owns the tensor it holds: replacing or disposing it disposes the previous one. Only the model assigns it (loading,
/// creation, or a training engine giving trained weights back); layers never read it directly but through the
/// <see cref="StageWeights"/> lease they are given. While the weights live elsewhere (a checkpoint opened lazily, a
/// training engine's parameter store) <see cref="IsResident"/> is false and reading the tensor throws, naming the way
/// to reach the weights (<see cref="LlamaModel.UseWeights"/>).
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
