using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// One parameter of the model under its HF name. The tensor may be replaced (the training step swaps in weights
/// it streamed from host or NVMe) but only by one of the declared shape, so a layer never sees a wrong shape.
/// The parameter owns the tensor it holds: replacing or disposing it disposes the previous one.
/// </summary>
public sealed class NamedParameter : IDisposable
{
    private Tensor _tensor;

    public NamedParameter(ParameterSpec spec, Tensor tensor)
    {
        Spec = spec;
        CheckShape(tensor);
        _tensor = tensor;
    }

    public ParameterSpec Spec { get; }

    public string Name => Spec.Name;

    /// <summary>The weights, (Spec.Shape) in the model's dtype on the model's device.</summary>
    public Tensor Tensor
    {
        get => _tensor;
        set
        {
            CheckShape(value);
            if (!ReferenceEquals(value, _tensor))
                _tensor.Dispose();
            _tensor = value;
        }
    }

    public void Dispose() => _tensor.Dispose();

    private void CheckShape(Tensor tensor)
    {
        long[] shape = tensor.Shape;
        if (!shape.SequenceEqual(Spec.Shape))
            throw new ArgumentException($"{Name} must have shape {Spec.ShapeText}, got [{string.Join(", ", shape)}].");
    }
}
