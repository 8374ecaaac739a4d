using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The weights one stage computes with, held for as long as this lease lives: a layer's Forward and Backward read
/// each parameter's tensor through it (<c>weights[parameter]</c>). Where the tensors live is the source's business
/// (<see cref="IWeightSource"/>: the model's own tensors, a checkpoint read on demand, or a training engine's
/// parameter store); the tensors stay valid until Dispose.
/// </summary>
public sealed class StageWeights : IDisposable
{
    private readonly Func<NamedParameter, Tensor> _lookup;
    private readonly IDisposable? _release;
    private bool _disposed;

    public StageWeights(Func<NamedParameter, Tensor> lookup, IDisposable? release = null)
    {
        _lookup = lookup;
        _release = release;
    }

    /// <summary>The model's own resident tensors (<see cref="NamedParameter.Tensor"/>); disposing it does nothing.</summary>
    public static StageWeights Resident { get; } = new(parameter => parameter.Tensor);

    public Tensor this[NamedParameter parameter]
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _lookup(parameter);
        }
    }

    public void Dispose()
    {
        if (ReferenceEquals(this, Resident) || _disposed)
            return;
        _disposed = true;
        _release?.Dispose();
    }
}
