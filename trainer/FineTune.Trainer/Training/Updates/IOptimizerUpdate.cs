namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// How the optimizer step of one training step runs relative to backward. The engine calls, per step:
/// <see cref="BeginLastMicroBatch"/> before the last micro-batch, <see cref="StageFinished"/> after each stage of its
/// backward (with the flat element where that stage's own parameters begin: everything from there up is final),
/// then <see cref="Finish"/>; or <see cref="Abandon"/> when the micro-batches failed. Implementations:
/// <see cref="SynchronousUpdate"/> (after backward), <see cref="OverlappedUpdate"/> (each sub-group as backward
/// finalises it; no clipping or loss scaling), <see cref="PrefetchingUpdate"/> (the global norm first, but the
/// first state reads during the last backward) and <see cref="DeferredUpdate"/> (decided after backward, applied
/// under the next forward). All give the same bits.
/// </summary>
internal interface IOptimizerUpdate
{
    /// <summary>"synchronous", "overlapped with backward", "state prefetch during backward".</summary>
    string Name { get; }

    /// <summary>True when the optimizer's I/O waits block the step's thread (synchronous); otherwise they happen on the optimizer's task.</summary>
    bool WaitsOnStepThread { get; }

    void BeginLastMicroBatch(double learningRate);

    void StageFinished(long ownedFirstElement);

    /// <summary>Completes the update; returns whether it was skipped (non-finite gradients) and the unscaled global norm.</summary>
    (bool Skipped, double Norm) Finish(double learningRate, double lossScale, long stepNumber);

    /// <summary>The micro-batches failed: the optimizer frees what it prefetched and updates nothing more.</summary>
    void Abandon(Exception error);

    /// <summary>Blocks until weights below flat element <paramref name="end"/> are final (an update still running under the forward).</summary>
    void WaitForWeights(long end) { }

    /// <summary>True when a read of weights below <paramref name="end"/> would see their final values.</summary>
    bool WeightsReady(long end) => true;

    /// <summary>Waits until no update is running (before gradients, weights or states are touched otherwise).</summary>
    void Settle() { }

    /// <summary>Seconds the step's thread waited for a running update since the last call.</summary>
    double TakeWaitSeconds() => 0;
}
