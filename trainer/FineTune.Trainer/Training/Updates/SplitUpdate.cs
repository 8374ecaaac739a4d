using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// <see cref="OverlappedUpdate"/> with its top part moved under the next forward, where the drive only reads weights.
/// The sub-groups below the split are updated from the top down as backward finalises them; the step's thread then
/// goes on, and the sub-groups from the split up (the top layers: their gradients were final first, held since, and
/// the next forward needs their weights last) are updated in ascending order under the next forward, which acquires
/// each stage only once the update has passed it (<see cref="WaitForWeights"/>). One optimizer flow: the next step's
/// update starts after this one's last pass. The same constants for every sub-group, so the bits are the overlapped
/// update's. Only without clipping and loss scaling, as the overlapped update.
/// </summary>
internal sealed class SplitUpdate(PartitionedOptimizer optimizer, long elementCount, long split) : IOptimizerUpdate
{
    private GradientReadiness? _readiness;
    private TaskCompletionSource? _belowDone;
    private UpdateProgress? _nextProgress;
    private Task? _task;        // the optimizer's flow: the latest step's two passes, after every earlier one
    private Task? _pending;     // the finished step whose top pass may still run (what Settle waits for)
    private readonly ForwardGate _gate = new();

    public string Name => "overlapped with backward, the top layers under the next forward";

    public bool WaitsOnStepThread => false;

    public void BeginLastMicroBatch(double learningRate)
    {
        var readiness = new GradientReadiness(elementCount);
        var belowDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var progress = UpdateProgress.Over(optimizer.SubGroups);
        (_readiness, _belowDone, _nextProgress) = (readiness, belowDone, progress);
        Task? previous = _task;
        optimizer.LearningRate = learningRate;
        _task = Task.Run(async () =>
        {
            try
            {
                if (previous is not null)
                    await previous.ConfigureAwait(false);
                await optimizer.StepInReverseThenAboveAsync(split, group => readiness.WaitAsync(group.FirstElement), belowDone, progress.CompleteWhenWritten)
                    .ConfigureAwait(false);
            }
            catch (Exception error)
            {
                belowDone.TrySetException(error);
                progress.Fail(error);
                throw;
            }
        });
    }

    public void StageFinished(long ownedFirstElement) => _readiness?.Advance(ownedFirstElement);

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        double norm = OverlappedUpdate.NormWhenDone(optimizer, _belowDone!.Task, stepNumber);
        // below the split every weight is written: the next forward waits only for the top pass
        foreach (SubGroup group in optimizer.SubGroups.Where(g => g.FirstElement < split))
            _nextProgress!.Complete(group.Index);
        (_gate.Progress, _pending) = (_nextProgress, _task);
        (_readiness, _belowDone, _nextProgress) = (null, null, null);
        return (false, norm);
    }

    public void Abandon(Exception error)
    {
        _readiness?.Fail(error);
        try { _task?.GetAwaiter().GetResult(); } catch (Exception) { } // the backward error is the one to report
        (_readiness, _belowDone, _nextProgress, _task, _pending, _gate.Progress) = (null, null, null, null, null, null);
    }

    /// <summary>Blocks until the top pass (if one is running) has written every weight below <paramref name="end"/>.</summary>
    public void WaitForWeights(long end) => _gate.WaitForWeights(end);

    public bool WeightsReady(long end) => _gate.WeightsReady(end);

    /// <summary>Waits for the finished step's top pass (never for the pass that follows a backward in progress).</summary>
    public void Settle()
    {
        if (_pending is not Task pending)
            return;
        _pending = null;
        if (ReferenceEquals(_task, pending))
            _task = null;
        _gate.Settle(pending);
    }

    public double TakeWaitSeconds() => _gate.TakeWaitSeconds();
}
