using FineTune.Torch;

namespace FineTune.Trainer.Generation;

/// <summary>
/// The keys and values of every decoder layer for the positions decoded so far, so each new token attends to them
/// without recomputing the prefix: per layer K and V of shape (1, KvH, Capacity, D) in the model's dtype on its
/// device, allocated once; positions [0, <see cref="Length"/>) are valid. Keys are stored after RoPE, so a cached
/// key never needs its position again. Owns its tensors.
/// </summary>
public sealed class KvCache : IDisposable
{
    private readonly Tensor[] _keys;
    private readonly Tensor[] _values;

    public KvCache(int layerCount, int kvHeadCount, int headDim, int capacity, DType dtype, Device device)
    {
        Capacity = capacity;
        _keys = new Tensor[layerCount];
        _values = new Tensor[layerCount];
        for (int i = 0; i < layerCount; i++)
        {
            _keys[i] = Owned(Torch.Torch.Zeros([1, kvHeadCount, capacity, headDim], dtype, device));
            _values[i] = Owned(Torch.Torch.Zeros([1, kvHeadCount, capacity, headDim], dtype, device));
        }
    }

    /// <summary>Positions the cache can hold (prompt plus generated tokens).</summary>
    public int Capacity { get; }

    /// <summary>Positions written and committed by <see cref="Advance"/>.</summary>
    public int Length { get; private set; }

    /// <summary>
    /// Writes layer <paramref name="layer"/>'s k and v (1, KvH, T, D) at positions [Length, Length + T) and returns
    /// views of all valid positions (1, KvH, Length + T, D). Every layer writes the same T before <see cref="Advance"/>.
    /// </summary>
    public (Tensor Keys, Tensor Values) Append(int layer, Tensor k, Tensor v)
    {
        long count = k.Shape[2];
        if (Length + count > Capacity)
            throw new InvalidOperationException($"the KV cache holds {Capacity} positions; {Length} + {count} do not fit.");
        _keys[layer].Narrow(2, Length, count).CopyFrom(k);
        _values[layer].Narrow(2, Length, count).CopyFrom(v);
        return (_keys[layer].Narrow(2, 0, Length + count), _values[layer].Narrow(2, 0, Length + count));
    }

    /// <summary>Commits the T positions every layer has appended.</summary>
    public void Advance(int count) => Length += count;

    public void Dispose()
    {
        foreach (Tensor t in _keys.Concat(_values))
            t?.Dispose();
    }

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;
}
