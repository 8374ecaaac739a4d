using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// Exact overlap under clipping and loss scaling: the global norm is known when backward ends, so the decision (skip,
/// unscale, clip) is taken then, on the step's thread, and the update itself runs under the next step's forward. The
/// optimizer's task updates the sub-groups in ascending order — the order the next forward needs the weights in —
/// while the forward acquires each stage only once the update has passed it (<see cref="WaitForWeights"/>): the first
/// stage waits for the first sub-groups, the rest of the state I/O hides behind forward compute. The arithmetic is the
/// synchronous step's, only later, so the bits are the same. The gradients must stay until the update is done: the
/// next backward's first harvest waits for it (<see cref="Settle"/>), as do checkpoints, loads and disposal.
/// </summary>
internal sealed class DeferredUpdate(PartitionedOptimizer optimizer) : IOptimizerUpdate
{
    private Task? _running;
    private readonly ForwardGate _gate = new();

    public string Name => "under the next forward";

    public bool WaitsOnStepThread => false;

    /// <summary>Seconds the step's thread waited for the previous update since the last call (the optimizer on the critical path).</summary>
    public double TakeWaitSeconds() => _gate.TakeWaitSeconds();

    public void BeginLastMicroBatch(double learningRate) { }

    public void StageFinished(long ownedFirstElement) { }

    public (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber)
    {
        Settle();
        optimizer.LearningRate = learningRate;
        StepDecision decision = optimizer.Decide(lossScale);
        if (decision.Result.Skipped)
            return (true, decision.Result.GradientNorm);
        var progress = UpdateProgress.Over(optimizer.SubGroups);
        _gate.Progress = progress;
        _running = Task.Run(async () =>
        {
            try
            {
                await optimizer.ApplyAsync(decision, progress.CompleteWhenWritten).ConfigureAwait(false);
            }
            catch (Exception error)
            {
                progress.Fail(error);
                throw;
            }
        });
        return (false, decision.Result.GradientNorm);
    }

    public void WaitForWeights(long end) => _gate.WaitForWeights(end);

    public bool WeightsReady(long end) => _gate.WeightsReady(end);

    /// <summary>Waits for the running update to end (counted as wait) and rethrows its failure.</summary>
    public void Settle()
    {
        if (_running is not Task running)
            return;
        _running = null;
        _gate.Settle(running);
    }

    public void Abandon(Exception error)
    {
        try { Settle(); } catch (Exception) { } // the step's own error is the one to report
    }
}
