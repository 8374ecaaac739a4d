using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// <see cref="BaseWeights.Of"/>: each parameter as the model serves it, in chunks (<see cref="LlamaModel.ReadChunks"/>:
/// whole for resident or opened weights, one read at a time; row chunks for a model created streamed).
/// </summary>
internal sealed class ModelBaseWeights(LlamaModel source) : BaseWeights
{
    internal override BaseFingerprint? FillInto(ParameterStore store, LlamaModel model)
    {
        if (!ReferenceEquals(source, model))
            throw new ArgumentException("BaseWeights.Of takes the engine's own model; use FromFolder or Generated for another source.", nameof(model));
        for (int i = 0; i < model.Parameters.Count; i++)
        {
            foreach (var (offset, values) in model.ReadChunks(model.Parameters[i]))
                store.Fill(i, offset, values);
        }
        store.CompleteFill();
        return null;
    }
}
