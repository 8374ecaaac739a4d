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
        if (_store.Layout.RangeOfStage(stageIndex) is int range)
            _waitForWeights(_store.Layout.Ranges[range].First + _store.Layout.Ranges[range].Count);
        StageLease lease = _store.Acquire(stageIndex, direction);
        return new StageWeights(parameter => lease.Get(_index[parameter]), lease);
    }

    /// <summary>The layout index of <paramref name="parameter"/>.</summary>
    public int IndexOf(NamedParameter parameter) => _index[parameter];
}
