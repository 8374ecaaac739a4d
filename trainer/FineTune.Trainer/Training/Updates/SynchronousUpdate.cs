using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>The optimizer after backward: one norm pass, then every sub-group in order (read k+1 | update k | write k-1).</summary>
internal sealed class SynchronousUpdate(PartitionedOptimizer optimizer) : IOptimizerUpdate
{
    public string Name => "synchronous";

    public bool WaitsOnStepThread => true;

    public void BeginLastMicroBatch(double learningRate) { }

    public void StageFinished(long ownedFirstElement) { }

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        optimizer.LearningRate = learningRate;
        StepResult result = optimizer.Step(lossScale);
        return (result.Skipped, result.GradientNorm);
    }

    public void Abandon(Exception error) { }
}
