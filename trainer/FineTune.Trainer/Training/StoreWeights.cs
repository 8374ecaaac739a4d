using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training;

/// <summary>
/// The model's weight source while a training engine holds it: each stage lease is a lease of the engine's
/// <see cref="ParameterStore"/> (tensor views over the pool, or over the slots NVMe weights are read into), so the
/// training step, <see cref="LlamaModel.Forward"/> and the exporter all read the weights the optimizer writes.
/// </summary>
internal sealed class StoreWeights : IWeightSource
{
    private readonly ParameterStore _store;
    private readonly Dictionary<NamedParameter, int> _index;

    public StoreWeights(ParameterStore store, LlamaModel model)
    {
        _store = store;
        _index = model.Parameters.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
    }

    public bool IsResident => _store.Tier == WeightTier.Resident;

    public StageWeights Acquire(int stageIndex, int direction)
    {
        StageLease lease = _store.Acquire(stageIndex, direction);
        return new StageWeights(parameter => lease.Get(_index[parameter]), lease);
    }

    /// <summary>The layout index of <paramref name="parameter"/>.</summary>
    public int IndexOf(NamedParameter parameter) => _index[parameter];
}
