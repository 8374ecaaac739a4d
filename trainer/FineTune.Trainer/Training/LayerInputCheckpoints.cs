using FineTune.Offload.Activations;
using FineTune.Torch;

namespace FineTune.Trainer.Training;

/// <summary>
/// The decoder-layer inputs saved in forward and loaded in backward: either an <see cref="ActivationStore"/>
/// (pooled host buffers and NVMe, offloaded mode) or plain tensors kept alive (in-memory mode). Load returns a
/// tensor the caller owns and disposes.
/// </summary>
internal sealed class LayerInputCheckpoints : IDisposable
{
    private readonly ActivationStore? _store;
    private readonly Tensor?[] _tensors;

    public LayerInputCheckpoints(int count, ActivationStore? store)
    {
        _store = store;
        _tensors = new Tensor?[count];
    }

    public ActivationStore? Store => _store;

    public void Save(int index, Tensor input)
    {
        if (_store is not null)
        {
            _store.Save(index, input);
            return;
        }
        _tensors[index]?.Dispose();
        Tensor copy = input.Detach();
        _tensors[index] = TensorScope.Current?.Detach(copy) ?? copy;
    }

    public void Prefetch(int index) => _store?.Prefetch(index);

    public Tensor Load(int index)
    {
        if (_store is not null)
            return _store.Load(index);
        Tensor saved = _tensors[index] ?? throw new InvalidOperationException($"checkpoint {index} was never saved.");
        _tensors[index] = null;
        return TensorScope.Current?.Include(saved) ?? saved;
    }

    public void Drain() => _store?.Drain();

    public void Dispose()
    {
        foreach (Tensor? tensor in _tensors)
            tensor?.Dispose();
        _store?.Dispose();
    }
}
