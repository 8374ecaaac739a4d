using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// The model's weight source while an <see cref="AdapterEngine"/> holds it: each stage lease is a lease of the
/// read-only base store (views over the pool, or over the slots the NVMe base is read into), except that a
/// parameter trained in full (model.lora.trainable) is served as its trained tensor. So the training step,
/// <see cref="LlamaModel.Forward"/> (evaluation) and the PEFT writer all see the weights being trained.
/// </summary>
internal sealed class AdapterWeights : IWeightSource
{
    private readonly ParameterStore _store;
    private readonly TrainedParameters _trained;
    private readonly Dictionary<NamedParameter, int> _index;

    public AdapterWeights(ParameterStore store, LlamaModel model, TrainedParameters trained)
    {
        _store = store;
        _trained = trained;
        _index = model.Parameters.Select((p, i) => (p, i)).ToDictionary(x => x.p, x => x.i);
    }

    public bool IsResident => _store.Tier == WeightTier.Resident;

    public StageWeights Acquire(int stageIndex, int direction)
    {
        StageLease lease = _store.Acquire(stageIndex, direction);
        return new StageWeights(parameter => _trained.TryGetExtra(parameter, out var trained) ? trained : lease.Get(_index[parameter]), lease);
    }

    /// <summary>The layout index of <paramref name="parameter"/>.</summary>
    public int IndexOf(NamedParameter parameter) => _index[parameter];
}
