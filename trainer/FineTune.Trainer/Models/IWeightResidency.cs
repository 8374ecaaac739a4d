namespace FineTune.Trainer.Models;

/// <summary>
/// Brings a model's weights in on demand when the training engine keeps them off the compute device (parameter
/// offload). <see cref="LlamaModel.Forward"/> and the exporter go through it; the engine installs it on the model
/// and removes it on Dispose. Each Use returns a handle that keeps the weights resident until disposed.
/// </summary>
public interface IWeightResidency
{
    /// <summary>
    /// Makes stage <paramref name="stageIndex"/>'s weights resident (into its parameters' tensors) and starts
    /// bringing in the stage <paramref name="direction"/> steps away (+1 forward, -1 backward, 0 none).
    /// </summary>
    IDisposable Use(int stageIndex, int direction);

    /// <summary>Makes <paramref name="parameter"/> resident (with the rest of its stage).</summary>
    IDisposable Use(NamedParameter parameter);
}
