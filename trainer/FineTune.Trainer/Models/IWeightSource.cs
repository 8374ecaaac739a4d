namespace FineTune.Trainer.Models;

/// <summary>
/// Where a model's weights come from, stage by stage: the model's own tensors (<see cref="ResidentWeights"/>), a
/// checkpoint opened without reading (<see cref="CheckpointWeights"/>), or a training engine's parameter store while
/// the engine holds the model. <see cref="LlamaModel.Forward"/>, the exporter and the training step all ask it for a
/// <see cref="StageWeights"/> lease and pass it to the layers explicitly.
/// </summary>
public interface IWeightSource
{
    /// <summary>
    /// Stage <paramref name="stageIndex"/>'s weights, held until the lease is disposed; a streaming source starts
    /// bringing in the stages <paramref name="direction"/> steps away (+1 forward, -1 backward, 0 none).
    /// </summary>
    StageWeights Acquire(int stageIndex, int direction);

    /// <summary>True when every weight is in memory for as long as the model lives (no lease reads anything).</summary>
    bool IsResident { get; }

    /// <summary>
    /// The row blocks stage <paramref name="stageIndex"/> computes with, one at a time (a large embedding or LM head held
    /// by a training engine as blocks); null when the stage takes its weights whole.
    /// </summary>
    IReadOnlyList<FineTune.Offload.Parameters.LayoutBlock>? Blocks(int stageIndex) => null;

    /// <summary>Block <paramref name="block"/> of stage <paramref name="stageIndex"/>: its weight's rows, held until disposed.</summary>
    StageWeights AcquireBlock(int stageIndex, int block, int direction) =>
        throw new NotSupportedException($"stage {stageIndex} takes its weights whole");
}
