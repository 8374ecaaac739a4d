using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training;

/// <summary>
/// The model's weight source while a training engine holds it: each stage lease is a lease of the engine's
/// <see cref="ParameterStore"/> (tensor views over the pool, or over the slots NVMe weights are read into), so the
/// training step, <see cref="LlamaModel.Forward"/> and the exporter all read the weights the optimizer writes (once
/// an update still running under the forward has written them).
/// </summary>
internal sealed class StoreWeights : IWeightSource
{
    private readonly ParameterStore _store;
    private readonly Dictionary<NamedParameter, int> _index;
    private readonly Action<long> _waitForWeights;

    /// <param name="store">The engine's parameter store.</param>
    /// <param name="model">The model whose parameters the store holds, in layout order.</param>
    /// <param name="waitForWeights">Blocks until an update still running has written every weight below the given flat element.</param>
    public StoreWeights(ParameterStore store, LlamaModel model, Action<long> waitForWeights)
    {
        _store = store;
        _index = model.Parameters.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
        _waitForWeights = waitForWeights;
    }

    public bool IsResident => _store.Tier == WeightTier.Resident;

    public StageWeights Acquire(int stageIndex, int direction)
    {
        if (_store.Layout.Blocks(stageIndex) is not null)
            return AssembledFromBlocks(stageIndex);
        if (_store.Layout.RangeOfStage(stageIndex) is int range)
            _waitForWeights(_store.Layout.Ranges[range].First + _store.Layout.Ranges[range].Count);
        StageLease lease = _store.Acquire(stageIndex, direction);
        return new StageWeights(parameter => lease.Get(_index[parameter]), lease);
    }

    public IReadOnlyList<LayoutBlock>? Blocks(int stageIndex) => _store.Layout.Blocks(stageIndex);

    public StageWeights AcquireBlock(int stageIndex, int block, int direction)
    {
        WeightRange range = _store.Layout.Ranges[_store.Layout.Blocks(stageIndex)![block].Range];
        _waitForWeights(range.First + range.Count);
        StageLease lease = _store.AcquireBlock(stageIndex, block, direction);
        return new StageWeights(parameter => lease.Get(_index[parameter]), lease);
    }

    /// <summary>
    /// A stage that computes by row blocks, whole: each of its parameters copied block by block into a tensor this
    /// lease owns (the exporter, evaluation and generation read the embedding or LM head whole; training reads blocks).
    /// </summary>
    private StageWeights AssembledFromBlocks(int stageIndex)
    {
        foreach (LayoutBlock block in _store.Layout.Blocks(stageIndex)!)
            _waitForWeights(_store.Layout.Ranges[block.Range].First + _store.Layout.Ranges[block.Range].Count);
        var whole = new Dictionary<int, FineTune.Torch.Tensor>();
        foreach (int parameter in _store.Layout.Stages[stageIndex].Uses)
            whole[parameter] = _store.ReadOwned(parameter);
        return new StageWeights(parameter => whole[_index[parameter]], new OwnedTensors(whole.Values));
    }

    private sealed class OwnedTensors(IEnumerable<FineTune.Torch.Tensor> tensors) : IDisposable
    {
        public void Dispose()
        {
            foreach (FineTune.Torch.Tensor tensor in tensors)
                tensor.Dispose();
        }
    }

    /// <summary>The layout index of <paramref name="parameter"/>.</summary>
    public int IndexOf(NamedParameter parameter) => _index[parameter];
}
