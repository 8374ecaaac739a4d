using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// Sub-groups updated from the top down while backward goes on: each waits until backward has passed its first
/// element (<see cref="GradientReadiness"/>), so the top layers' updates (their state reads and writes) hide behind
/// backward through the lower ones. Only without clipping and loss scaling: both need the global norm before the
/// first update. The norm is still computed (for the metrics) on the step's thread while the last updates run.
/// </summary>
internal sealed class OverlappedUpdate(PartitionedOptimizer optimizer, long elementCount) : IOptimizerUpdate
{
    private GradientReadiness? _readiness;
    private Task<long>? _task;

    public string Name => "overlapped with backward";

    public bool WaitsOnStepThread => false;

    public void BeginLastMicroBatch(double learningRate)
    {
        var readiness = new GradientReadiness(elementCount);
        _readiness = readiness;
        optimizer.LearningRate = learningRate;
        _task = Task.Run(() => optimizer.StepInReverseAsync(group => readiness.WaitAsync(group.FirstElement)));
    }

    public void StageFinished(long ownedFirstElement) => _readiness?.Advance(ownedFirstElement);

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        try
        {
            return (false, NormWhenDone(optimizer, _task!, stepNumber));
        }
        finally
        {
            _task = null;
            _readiness = null;
        }
    }

    /// <summary>
    /// The step's global norm, once <paramref name="updated"/> (the updates that follow backward) is done; a
    /// non-finite gradient that made them throw is the run diverging, said in one sentence.
    /// </summary>
    internal static double NormWhenDone(PartitionedOptimizer optimizer, Task updated, long stepNumber)
    {
        // The norm pass reads the same gradients the optimizer reads; neither writes them.
        double norm = Math.Sqrt(optimizer.Gradients.SumOfSquares(optimizer.Options.MaxDegreeOfParallelism));
        try
        {
            updated.GetAwaiter().GetResult();
        }
        catch (InvalidOperationException) when (!double.IsFinite(norm))
        {
            // Without loss scaling nothing checks the norm before the first update; sub-groups already written cannot be undone.
            throw new UserErrorException($"Step {stepNumber} produced a non-finite gradient (norm {norm}) while the optimizer overlapped backward: training diverged; lower the learning rate, or set max_grad_norm (which also turns the overlap off).");
        }
        return norm;
    }

    public void Abandon(Exception error)
    {
        _readiness?.Fail(error);
        try { _task?.GetAwaiter().GetResult(); } catch (Exception) { } // the backward error is the one to report
        _task = null;
        _readiness = null;
    }
}
