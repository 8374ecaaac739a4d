using System.Diagnostics;
using FineTune.Offload.Memory;
using FineTune.Offload.Rings;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Training.Gradients;

namespace FineTune.Trainer.Training;

// The step itself: the micro-batches forward and backward layer by layer, gradients into the accumulators, the
// optimizer as the update strategy runs it, then the step's measurements.
public sealed partial class TrainingEngine
{
    /// <summary>
    /// One optimizer step over the micro-batches of one accumulation window (each at most MicroBatchSize x
    /// SequenceLength). Returns the window's loss and the step's measurements.
    /// </summary>
    public StepMetrics Step(IReadOnlyList<Batch> microBatches)
    {
        long tokenCount = CheckStep(microBatches);
        long start = Stopwatch.GetTimestamp();
        Traffic before = Measure();
        double lossScale = LossScaler?.Scale ?? 1.0;
        double learningRate = NextLearningRate;
        // A scale past fp32's range makes the seeded gradient infinite, which the overflow check then skips (the
        // same outcome as fp16 overflowing deeper in backward); libtorch refuses to round a finite double to inf.
        double gradientScale = lossScale / tokenCount > float.MaxValue ? double.PositiveInfinity : lossScale / tokenCount;

        double lossSum = 0;
        try
        {
            for (int m = 0; m < microBatches.Count; m++)
            {
                bool first = m == 0, last = m == microBatches.Count - 1;
                if (last)
                    _update.BeginLastMicroBatch(learningRate);
                _gradients.BeginMicroBatch();
                bool settled = false;
                lossSum += _pass.Run(microBatches[m], gradientScale, (stage, block, weights) =>
                {
                    if (first && !settled)
                    {
                        _update.Settle(); // an update under the forward still reads the gradients about to be overwritten
                        settled = true;
                    }
                    _gradients.StageDone(stage, block, weights, first); // before the weights (and their .grad) are let go
                    if (!last)
                        return;
                    if (block is not null && Plan.Layout.Stages[stage].Owned.Contains(block.Parameter))
                        _update.StageFinished(Plan.Layout.FlatOffset(block.Parameter) + block.FirstRow * (Plan.Layout.Parameters[block.Parameter].ElementCount / Plan.Layout.Parameters[block.Parameter].Shape[0]));
                    else if (block is null && Plan.Layout.OwnedFirstElement(stage) is long boundary)
                        _update.StageFinished(boundary);
                });
            }
            _checkpoints.Drain();
        }
        catch (Exception error)
        {
            _update.Abandon(error);
            _gradients.Abandon();
            SettleWeights(); // an overlapped update may have rewritten some weights
            throw;
        }

        long optimizerStart = Stopwatch.GetTimestamp();
        (bool skipped, double norm) = (false, 0);
        try
        {
            (skipped, norm) = _update.Finish(learningRate, lossScale, StepCount + 1);
        }
        catch
        {
            SettleWeights(); // a failed update may have rewritten part of the weights
            throw;
        }
        finally
        {
            _gradients.EndStep();
        }
        // the optimizer's time on this step's critical path: deciding this step, and waiting for the previous one's update
        double optimizerSeconds = Stopwatch.GetElapsedTime(optimizerStart).TotalSeconds + _update.TakeWaitSeconds();
        if (_dataParallel is not null)
            lossSum = _dataParallel.SumOverRanks(lossSum); // every rank's token losses over the global batch's tokens
        LossScaler?.Update(!skipped);
        StepCount++;
        // the resident copies of NVMe weights predate the update; start reading the next step's first stage now
        _store.Invalidate();
        _store.Prefetch(0);
        return Metrics(tokenCount, lossSum, norm, learningRate, lossScale, skipped, start, optimizerSeconds, Measure() - before);
    }

    public StepMetrics Step(Batch batch) => Step([batch]);

    private long CheckStep(IReadOnlyList<Batch> microBatches)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0)
            throw new ArgumentException("a step needs at least one micro-batch.", nameof(microBatches));
        foreach (Batch batch in microBatches)
            if (batch.BatchSize > Options.MicroBatchSize || batch.SequenceLength > Options.SequenceLength)
                throw new ArgumentException($"micro-batch {batch.BatchSize}x{batch.SequenceLength} exceeds the planned {Options.MicroBatchSize}x{Options.SequenceLength}.", nameof(microBatches));
        if (_store.HeldStageCount > 0)
            throw new InvalidOperationException("A model.UseWeights handle is still open: dispose it before the next Step (the step rewrites the weights it holds).");
        // a rank's loss is over the tokens of the whole global batch, so the ranks' gradients sum to the 1-rank one
        long tokenCount = microBatches.Sum(b => (long)(_dataParallel is null ? b.TokenCount : b.GlobalTokenCount));
        if (tokenCount == 0)
            throw new ArgumentException("the micro-batches hold no target tokens (every label is -100).", nameof(microBatches));
        if (_gradients.Tier is GradientTier.Consumed or GradientTier.Nvme && microBatches.Count > 1)
            throw new ArgumentException($"this engine consumes gradients as backward makes them (one micro-batch per step); {microBatches.Count} micro-batches need AccumulationSteps = {microBatches.Count} in the options.", nameof(microBatches));
        return tokenCount;
    }

    /// <summary>
    /// Wall time split on the step's thread: the waits it saw (activations and weight reads always; the optimizer's
    /// own waits only when the update ran on this thread, otherwise they happened on the optimizer's task, hidden in
    /// optimizerSeconds or behind backward), backward's waits for the overlapped optimizer to consume its gradients,
    /// the optimizer beyond its waits, and compute (the rest).
    /// </summary>
    private StepMetrics Metrics(long tokenCount, double lossSum, double norm, double learningRate, double lossScale, bool skipped,
        long start, double optimizerSeconds, Traffic step)
    {
        bool onThisThread = _update.WaitsOnStepThread;
        double optimizerReadWait = onThisThread ? step.States.ReadWaitSeconds : 0;
        double optimizerWriteWait = onThisThread ? step.States.WriteWaitSeconds + step.Weights.WriteWaitSeconds : 0;
        double readWait = step.Activations.ReadWaitSeconds + step.Weights.ReadWaitSeconds + step.Gradients.ReadWaitSeconds + optimizerReadWait;
        double writeWait = step.Activations.WriteWaitSeconds + step.Gradients.WriteWaitSeconds + optimizerWriteWait;
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double optimizerOnly = Math.Max(0, optimizerSeconds - optimizerReadWait - optimizerWriteWait);
        TransferSnapshot all = step.States + step.Weights + step.Activations + step.Gradients;
        return new StepMetrics
        {
            Step = StepCount,
            Loss = lossSum / tokenCount,
            GradientNorm = norm,
            LearningRate = learningRate,
            Skipped = skipped,
            LossScale = lossScale,
            TokenCount = tokenCount,
            Seconds = seconds,
            ComputeSeconds = Math.Max(0, seconds - readWait - writeWait - optimizerOnly - step.OptimizerWaitSeconds),
            ReadWaitSeconds = readWait,
            WriteWaitSeconds = writeWait,
            OptimizerSeconds = optimizerOnly,
            OptimizerWaitSeconds = step.OptimizerWaitSeconds,
            UnspilledActivationByteCount = step.UnspilledActivationByteCount,
            BytesRead = all.BytesRead,
            BytesWritten = all.BytesWritten,
            Traffic = new NvmeTraffic(step.States.BytesRead, step.States.BytesWritten, step.Weights.BytesRead, step.Weights.BytesWritten,
                step.Activations.BytesRead, step.Activations.BytesWritten, step.Gradients.BytesRead, step.Gradients.BytesWritten),
            PoolReservedByteCount = PoolReservedByteCount,
            PoolPeakInUseByteCount = PoolPeakInUseByteCount,
            PeakResidentByteCount = ProcessMemory.PeakResidentByteCount(),
        };
    }

    private Traffic Measure() => new(_optimizer.Counters.Snapshot(), _store.Counters.Snapshot(), (_checkpoints.Store?.Counters.Snapshot() ?? default) + (_spill?.Counters.Snapshot() ?? default),
        (_gradients as ConsumedGradients)?.SpillTraffic ?? default, (_gradients as ConsumedGradients)?.OptimizerWaitSeconds ?? 0,
        _spill?.UnspilledByteCount ?? 0);

    /// <summary>
    /// The counters of the stores that move bytes, at one moment (a tied LM head's gradient spill among them), and the
    /// time backward has spent waiting for the optimizer to consume its gradients, and the spilled layers' saved tensors
    /// that stayed in memory because the spill file was full.
    /// </summary>
    private readonly record struct Traffic(TransferSnapshot States, TransferSnapshot Weights, TransferSnapshot Activations, TransferSnapshot Gradients,
        double OptimizerWaitSeconds, long UnspilledActivationByteCount)
    {
        public static Traffic operator -(Traffic after, Traffic before) =>
            new(after.States - before.States, after.Weights - before.Weights, after.Activations - before.Activations, after.Gradients - before.Gradients,
                after.OptimizerWaitSeconds - before.OptimizerWaitSeconds, after.UnspilledActivationByteCount - before.UnspilledActivationByteCount);
    }
}
