namespace FineTune.Trainer.Models;

/// <summary>
/// After a training engine built with RestoreWeightsOnDispose = false let go of the model: the weights ended with
/// the engine's weight file (a run saved them first). Any use says how to get them back.
/// </summary>
internal sealed class UnavailableWeights : IWeightSource
{
    public static UnavailableWeights Instance { get; } = new();

    public StageWeights Acquire(int stageIndex, int direction) => throw new InvalidOperationException(
        "This model's weights are gone: the training engine that held them was built with RestoreWeightsOnDispose = false; load the checkpoint you saved.");

    public bool IsResident => false;
}
