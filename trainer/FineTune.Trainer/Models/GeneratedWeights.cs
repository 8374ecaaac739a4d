using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The weights of a model created with <see cref="LlamaModel.CreateStreamed"/>: drawn from the seeded initializer
/// when asked, chunk by chunk, never all at once (a model larger than host memory goes straight into a training
/// engine's store). The draw is one generator in the stable parameter order, so reading in that order costs one pass;
/// asking for an earlier parameter starts the draw again from the seed (slow, but the same values).
/// Not thread-safe.
/// </summary>
internal sealed class GeneratedWeights(LlamaModel model, long seed) : IWeightSource, IDisposable
{
    private IEnumerator<(int Parameter, long Offset, Tensor Values)>? _draw;
    private (int Parameter, long Offset, Tensor Values)? _pending; // drawn but not yet handed out

    public bool IsResident => false;

    /// <summary>
    /// <paramref name="parameter"/>'s values as consecutive chunks (first element, values in the model's dtype); each
    /// chunk is valid until the enumeration moves on.
    /// </summary>
    public IEnumerable<(long Offset, Tensor Values)> Chunks(int parameter)
    {
        if (_pending is not { } next || next.Parameter > parameter)
            Restart();
        while (true)
        {
            (int Parameter, long Offset, Tensor Values)? chunk = Take();
            if (chunk is not { } c)
                yield break;
            if (c.Parameter < parameter)
            {
                c.Values.Dispose();
                continue;
            }
            if (c.Parameter > parameter)
            {
                _pending = c; // the next parameter's first chunk: kept for its turn
                yield break;
            }
            try
            {
                yield return (c.Offset, c.Values);
            }
            finally
            {
                c.Values.Dispose();
            }
        }
    }

    public StageWeights Acquire(int stageIndex, int direction)
    {
        var tensors = new Dictionary<NamedParameter, Tensor>();
        foreach (NamedParameter parameter in LlamaModel.WeightsOf(model.Stages[stageIndex]))
        {
            int index = IndexOf(parameter);
            Tensor whole = Owned(FineTune.Torch.Torch.Empty(parameter.Spec.Shape, model.DType, model.Device));
            using (FineTune.Torch.Torch.NoGrad())
                foreach (var (offset, values) in Chunks(index))
                    using (TensorScope.Enter())
                        whole.Reshape(-1).Narrow(0, offset, values.NumElements).CopyFrom(values.Reshape(-1));
            tensors[parameter] = whole;
        }
        return new StageWeights(p => tensors[p], new Release(tensors));
    }

    public void Dispose()
    {
        _pending?.Values.Dispose();
        _pending = null;
        _draw?.Dispose();
        _draw = null;
    }

    private int IndexOf(NamedParameter parameter)
    {
        for (int i = 0; i < model.Parameters.Count; i++)
            if (ReferenceEquals(model.Parameters[i], parameter))
                return i;
        throw new ArgumentException($"{parameter.Name} is not a parameter of this model.", nameof(parameter));
    }

    private void Restart()
    {
        Dispose();
        _draw = LlamaInitializer.Generate(model.Config, seed, model.DType, model.Device).GetEnumerator();
    }

    private (int Parameter, long Offset, Tensor Values)? Take()
    {
        if (_pending is { } pending)
        {
            _pending = null;
            return pending;
        }
        return _draw is not null && _draw.MoveNext() ? _draw.Current : null;
    }

    private static Tensor Owned(Tensor tensor) => TensorScope.Current?.Detach(tensor) ?? tensor;

    private sealed class Release(Dictionary<NamedParameter, Tensor> tensors) : IDisposable
    {
        public void Dispose()
        {
            foreach (Tensor tensor in tensors.Values)
                tensor.Dispose();
            tensors.Clear();
        }
    }
}
