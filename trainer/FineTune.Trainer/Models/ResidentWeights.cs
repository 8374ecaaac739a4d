namespace FineTune.Trainer.Models;

/// <summary>The weights are the model's own tensors (<see cref="NamedParameter.Tensor"/>): leases cost nothing.</summary>
internal sealed class ResidentWeights : IWeightSource
{
    public static ResidentWeights Instance { get; } = new();

    public StageWeights Acquire(int stageIndex, int direction) => StageWeights.Resident;

    public bool IsResident => true;
}
