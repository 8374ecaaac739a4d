using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary><see cref="BaseWeights.Of"/>: each parameter as the model serves it (one read at a time for a model opened lazily).</summary>
internal sealed class ModelBaseWeights(LlamaModel source) : BaseWeights
{
    internal override BaseFingerprint? FillInto(ParameterStore store, LlamaModel model)
    {
        if (!ReferenceEquals(source, model))
            throw new ArgumentException("BaseWeights.Of takes the engine's own model; use FromFolder or Generated for another source.", nameof(model));
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            NamedParameter parameter = model.Parameters[i];
            using StageWeights read = model.UseWeights(parameter);
            store.Fill(i, read[parameter]);
        }
        store.CompleteFill();
        return null;
    }
}
