using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// With clipping or loss scaling the update needs the global norm first, but the first sub-groups' state reads can
/// start with the last micro-batch: the optimizer's task reads them while backward runs, then waits for the norm
/// (unscale, clip, overflow check) before updating anything. A skipped step drops the prefetched buffers unwritten.
/// </summary>
internal sealed class PrefetchingUpdate(PartitionedOptimizer optimizer) : IOptimizerUpdate
{
    private TaskCompletionSource<double?>? _backwardDone;
    private Task<StepResult?>? _task;

    public string Name => "state prefetch during backward";

    public bool WaitsOnStepThread => false;

    public void BeginLastMicroBatch(double learningRate)
    {
        var done = new TaskCompletionSource<double?>(TaskCreationOptions.RunContinuationsAsynchronously);
        _backwardDone = done;
        optimizer.LearningRate = learningRate;
        _task = Task.Run(() => optimizer.StepWithPrefetchAsync(done.Task));
    }

    public void StageFinished(long ownedFirstElement) { }

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        _backwardDone!.SetResult(lossScale);
        try
        {
            StepResult result = _task!.GetAwaiter().GetResult()!.Value;
            return (result.Skipped, result.GradientNorm);
        }
        finally
        {
            _task = null;
            _backwardDone = null;
        }
    }

    public void Abandon(Exception error)
    {
        _backwardDone?.TrySetResult(null); // the prefetching step frees its buffers and updates nothing
        try { _task?.GetAwaiter().GetResult(); } catch (Exception) { }
        _task = null;
        _backwardDone = null;
    }
}
