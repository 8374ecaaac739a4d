using FineTune.Torch;

namespace FineTune.Offload.Parameters;

/// <summary>
/// A stage's weights held resident for as long as the lease lives: <see cref="Get"/> gives each parameter the stage
/// computes with as a tensor view over the store's memory (a leaf that requires grad, so backward leaves its gradient
/// in .Grad; read it before disposing the lease). Disposing lets the store reuse the memory.
/// </summary>
public sealed class StageLease : IDisposable
{
    private readonly ParameterStore _store;
    private readonly int _stage;
    private readonly IReadOnlyDictionary<int, Tensor> _views;
    private readonly int? _blockRange;
    private readonly Tensor? _owned;
    private bool _disposed;

    internal StageLease(ParameterStore store, int stage, IReadOnlyDictionary<int, Tensor> views, int? blockRange = null, Tensor? owned = null)
    {
        _store = store;
        _stage = stage;
        _views = views;
        _blockRange = blockRange;
        _owned = owned;
    }

    /// <summary>The view of <paramref name="parameter"/> (an index into the layout's parameters), valid until Dispose.</summary>
    public Tensor Get(int parameter)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _views.TryGetValue(parameter, out Tensor? view) ? view
            : throw new ArgumentException($"Parameter {parameter} is not one stage {_stage} computes with.", nameof(parameter));
    }

    public void Dispose()
    {
        if (_disposed)
            return;
        _disposed = true;
        _owned?.Dispose();
        _store.Release(_stage, _blockRange);
    }
}
