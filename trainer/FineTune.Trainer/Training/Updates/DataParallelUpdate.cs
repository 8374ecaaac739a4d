using FineTune.Offload.DataParallel;
using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// One rank's step under ZeRO, after backward: the accumulated gradients are reduce-scattered to their owners, then
/// the optimizer (this rank's sub-groups only) takes the plain step: the norm over ranks, the skip or clip decision
/// (the same on every rank: the norm is), the owned sub-groups in ascending order with their state I/O pipelined,
/// each stripe's weights all-gathered as its update is written. Synchronous: the collectives of one step run from one
/// thread at a time, and the next forward needs every gathered weight.
/// </summary>
internal sealed class DataParallelUpdate(PartitionedOptimizer optimizer, ReducedGradients gradients) : IOptimizerUpdate
{
    public string Name => "data-parallel (reduce-scatter, owners update, all-gather)";

    public bool WaitsOnStepThread => true;

    public void BeginLastMicroBatch(double learningRate) { }

    public void StageFinished(long ownedFirstElement) { }

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        gradients.ReduceScatter();
        optimizer.LearningRate = learningRate;
        StepResult result = optimizer.Step(lossScale);
        return (result.Skipped, result.GradientNorm);
    }

    public void Abandon(Exception error) { }
}
