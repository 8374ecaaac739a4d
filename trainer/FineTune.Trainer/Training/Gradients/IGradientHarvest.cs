using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Training.Gradients;

/// <summary>
/// Where backward's gradients go, stage by stage: <see cref="StageDone"/> runs after each stage's backward with the
/// stage's lease still held (its weights' .grad), and the optimizer reads them through <see cref="Source"/>.
/// Implementations: <see cref="AccumulatedGradients"/> (fp32 host accumulators) and <see cref="ConsumedGradients"/>
/// (handed to the update and freed after it).
/// </summary>
internal interface IGradientHarvest : IDisposable
{
    GradientTier Tier { get; }

    /// <summary>The optimizer's view of the gradients.</summary>
    IGradientSource Source { get; }

    /// <summary>Host address of parameter <paramref name="parameter"/>'s gradients for the optimizer (0 when they move per step).</summary>
    nint Address(int parameter);

    void BeginMicroBatch();

    /// <summary>
    /// Stage <paramref name="stage"/>'s backward is done (or one row block of it: <paramref name="block"/>); its weights'
    /// .grad are in <paramref name="weights"/>' tensors (null: a block no token touched, its gradient zero).
    /// </summary>
    void StageDone(int stage, LayoutBlock? block, StageWeights? weights, bool firstMicroBatch);

    /// <summary>After a step: nothing of it may stay but what an update still to run reads (held gradients).</summary>
    void EndStep();

    /// <summary>After a failed step: nothing of it may stay.</summary>
    void Abandon() => EndStep();
}
