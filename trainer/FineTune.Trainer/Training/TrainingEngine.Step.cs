using System.Diagnostics;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Training;

// The step itself: micro-batches forward and backward layer by layer, then the optimizer.
public sealed partial class TrainingEngine
{
    /// <summary>
    /// One optimizer step over the micro-batches of one accumulation window (each at most MicroBatchSize x
    /// SequenceLength). Returns the window's loss and the step's measurements.
    /// </summary>
    public StepMetrics Step(IReadOnlyList<Batch> microBatches)
    {
        ArgumentNullException.ThrowIfNull(microBatches);
        if (microBatches.Count == 0)
            throw new ArgumentException("a step needs at least one micro-batch.", nameof(microBatches));
        foreach (Batch batch in microBatches)
            if (batch.BatchSize > Options.MicroBatchSize || batch.SequenceLength > Options.SequenceLength)
                throw new ArgumentException($"micro-batch {batch.BatchSize}x{batch.SequenceLength} exceeds the planned {Options.MicroBatchSize}x{Options.SequenceLength}.", nameof(microBatches));
        if (_streamed is { HeldStageCount: > 0 })
            throw new InvalidOperationException("A model.UseWeights handle is still open: dispose it before the next Step (the step rewrites the weights it holds).");
        long tokenCount = microBatches.Sum(b => (long)b.TokenCount);
        if (tokenCount == 0)
            throw new ArgumentException("the micro-batches hold no target tokens (every label is -100).", nameof(microBatches));

        long start = Stopwatch.GetTimestamp();
        ActivationCounters activationsBefore = _checkpoints.Store?.Counters.Snapshot() ?? new ActivationCounters();
        OptimizerCounters optimizerBefore = _optimizer?.Counters.Snapshot() ?? new OptimizerCounters();
        (long Read, long Written, double ReadWait, double WriteWait) weightsBefore = WeightTotals();
        double lossScale = LossScaler?.Scale ?? 1.0;
        double learningRate = NextLearningRate;
        // A scale past fp32's range makes the seeded gradient infinite, which the overflow check then skips (the
        // same outcome as fp16 overflowing deeper in backward); libtorch refuses to round a finite double to inf.
        double gradientScale = lossScale / tokenCount > float.MaxValue ? double.PositiveInfinity : lossScale / tokenCount;

        GradientReadiness? readiness = null;
        Task<long>? overlapped = null;
        TaskCompletionSource<double?>? backwardDone = null;
        Task<StepResult?>? prefetching = null;
        double lossSum = 0;
        try
        {
            for (int m = 0; m < microBatches.Count; m++)
            {
                bool last = m == microBatches.Count - 1;
                if (last && OverlapsOptimizer)
                {
                    readiness = new GradientReadiness(_totalElementCount);
                    _optimizer!.LearningRate = learningRate;
                    GradientReadiness ready = readiness;
                    overlapped = Task.Run(() => _optimizer.StepInReverseAsync(group => ready.WaitAsync(group.FirstElement)));
                }
                else if (last && PrefetchesOptimizerStates)
                {
                    backwardDone = new TaskCompletionSource<double?>(TaskCreationOptions.RunContinuationsAsynchronously);
                    _optimizer!.LearningRate = learningRate;
                    Task<double?> done = backwardDone.Task;
                    prefetching = Task.Run(() => _optimizer.StepWithPrefetchAsync(done));
                }
                lossSum += Options.ActivationCheckpointing
                    ? RunMicroBatch(microBatches[m], first: m == 0, readiness, gradientScale)
                    : RunMicroBatchFullGraph(microBatches[m], gradientScale);
            }
            _checkpoints.Drain();
        }
        catch (Exception error)
        {
            readiness?.Fail(error);
            backwardDone?.SetResult(null); // the prefetching step frees its buffers and updates nothing
            try { overlapped?.GetAwaiter().GetResult(); } catch (Exception) { } // the backward error is the one to report
            try { prefetching?.GetAwaiter().GetResult(); } catch (Exception) { }
            SettleWeights(); // an overlapped update may have rewritten some weights
            throw;
        }

        long optimizerStart = Stopwatch.GetTimestamp();
        bool skipped;
        double norm;
        try
        {
            if (_inMemory is not null)
            {
                (skipped, norm) = _inMemory.Step(learningRate, lossScale);
            }
            else if (overlapped is not null)
            {
                // The norm pass reads the same gradients the optimizer reads; neither writes them.
                norm = Math.Sqrt(GradientNorm.SumOfSquares(_parameters!.GradientBuffers, Options.OptimizerThreads));
                try
                {
                    overlapped.GetAwaiter().GetResult();
                }
                catch (InvalidOperationException) when (!double.IsFinite(norm))
                {
                    // Without loss scaling nothing checks the norm before the first update; sub-groups already written cannot be undone.
                    throw new UserErrorException($"Step {StepCount + 1} produced a non-finite gradient (norm {norm}) while the optimizer overlapped backward: training diverged; lower the learning rate, or set max_grad_norm (which also turns the overlap off).");
                }
                skipped = false;
            }
            else if (prefetching is not null)
            {
                backwardDone!.SetResult(lossScale);
                StepResult result = prefetching.GetAwaiter().GetResult()!.Value;
                (skipped, norm) = (result.Skipped, result.GradientNorm);
            }
            else
            {
                _optimizer!.LearningRate = learningRate;
                StepResult result = _optimizer.Step(lossScale);
                (skipped, norm) = (result.Skipped, result.GradientNorm);
            }
        }
        catch
        {
            SettleWeights(); // a failed update may have rewritten part of the weights
            throw;
        }
        double optimizerSeconds = Stopwatch.GetElapsedTime(optimizerStart).TotalSeconds;
        LossScaler?.Update(!skipped);
        StepCount++;
        if (_streamed is not null)
        {
            // the resident copies predate the update; start reading the next step's first stage now
            _streamed.Invalidate();
            _streamed.Prefetch(0);
        }
        var weights = WeightTotals();

        ActivationCounters activations = _checkpoints.Store?.Counters ?? new ActivationCounters();
        OptimizerCounters optimizer = _optimizer?.Counters ?? new OptimizerCounters();
        // In the overlapped and prefetching steps the optimizer's own waits happened on its task, hidden in
        // optimizerSeconds or behind backward; only the synchronous step's waits are on this thread.
        bool synchronous = overlapped is null && prefetching is null;
        double optimizerReadWait = synchronous ? optimizer.ReadWaitSeconds - optimizerBefore.ReadWaitSeconds : 0;
        double optimizerWriteWait = synchronous
            ? optimizer.WriteWaitSeconds - optimizerBefore.WriteWaitSeconds + weights.WriteWait - weightsBefore.WriteWait
            : 0;
        double readWait = activations.ReadWaitSeconds - activationsBefore.ReadWaitSeconds + optimizerReadWait + weights.ReadWait - weightsBefore.ReadWait;
        double writeWait = activations.WriteWaitSeconds - activationsBefore.WriteWaitSeconds + optimizerWriteWait;
        double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
        double optimizerOnly = Math.Max(0, optimizerSeconds - optimizerReadWait - optimizerWriteWait);
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
            ComputeSeconds = Math.Max(0, seconds - readWait - writeWait - optimizerOnly),
            ReadWaitSeconds = readWait,
            WriteWaitSeconds = writeWait,
            OptimizerSeconds = optimizerOnly,
            BytesRead = activations.BytesRead - activationsBefore.BytesRead + optimizer.BytesRead - optimizerBefore.BytesRead + weights.Read - weightsBefore.Read,
            BytesWritten = activations.BytesWritten - activationsBefore.BytesWritten + optimizer.BytesWritten - optimizerBefore.BytesWritten + weights.Written - weightsBefore.Written,
            PoolReservedByteCount = PoolReservedByteCount,
            PoolPeakInUseByteCount = PoolPeakInUseByteCount,
            PeakResidentByteCount = ProcessMemory.PeakResidentByteCount(),
        };
    }

    /// <summary>Forward and backward of one micro-batch; returns the sum of its token losses.</summary>
    private double RunMicroBatch(Batch batch, bool first, GradientReadiness? readiness, double gradientScale)
    {
        using var scope = TensorScope.Enter();
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        Tensor ids = FromArray(batch.InputIds, shape);       // (B, T) int64
        Tensor targets = FromArray(batch.Labels, shape);     // (B, T) int64, already shifted, -100 ignored
        IReadOnlyList<DecoderLayer> layers = _model.Layers;

        _parameters?.BeginMicroBatch();
        Tensor x;                                            // (B, T, C) residual stream
        using (NoGrad())
        {
            using (Weights(0, +1))
                x = _model.Embedding.Forward(ids);
            for (int i = 0; i < layers.Count; i++)
            {
                _checkpoints.Save(i, x);
                Tensor next;
                using (Weights(i + 1, +1))
                    next = layers[i].Forward(x);
                x.Dispose();
                x = next;
            }
        }
        // The lower checkpoints are needed last: start reading the top NVMe ones while the head computes.
        for (int i = layers.Count - 1; i >= Math.Max(0, layers.Count - Options.ActivationStagingBuffers + 1); i--)
            _checkpoints.Prefetch(i);

        Tensor normed, logits;
        int top = _model.Stages.Count - 1;
        using (NoGrad())
        {
            using (Weights(top - 1, +1))
                normed = _model.FinalNorm.Forward(x);        // (B, T, C)
            using (Weights(top, -1))                         // backward starts here: prefetch downwards
                logits = _model.LmHead.Forward(normed);      // (B, T, V)
        }
        var (loss, logitsGrad) = CausalLmLoss.ForwardBackward(logits, targets, gradientScale, Reduction.Sum);
        double lossSum = loss.Item<double>();
        logits.Dispose();

        Tensor grad = Backward(_model.LmHead, _model.Stages.Count - 1, normed, logitsGrad, first, readiness)!;
        normed.Dispose();
        grad = Backward(_model.FinalNorm, _model.Stages.Count - 2, x, grad, first, readiness)!;
        x.Dispose();
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            for (int ahead = 1; ahead < Options.ActivationStagingBuffers; ahead++)
                _checkpoints.Prefetch(i - ahead);
            Tensor input = _checkpoints.Load(i);
            grad = Backward(layers[i], i + 1, input, grad, first, readiness)!;
            input.Dispose();
        }
        Backward(_model.Embedding, 0, ids, grad, first, readiness);
        return lossSum;
    }

    /// <summary>Stage <paramref name="stageIndex"/>'s weights resident until disposed, the next ones in <paramref name="direction"/> prefetched (parameter offload; null otherwise).</summary>
    private IDisposable? Weights(int stageIndex, int direction) => _streamed?.Use(stageIndex, direction);

    private (long Read, long Written, double ReadWait, double WriteWait) WeightTotals() =>
        (WeightCounters.BytesRead, WeightCounters.BytesWritten, WeightCounters.ReadWaitSeconds, WeightCounters.WriteWaitSeconds);

    /// <summary>The plain baseline (in-memory, no checkpointing): one autograd graph through the whole model; returns the token-loss sum.</summary>
    private double RunMicroBatchFullGraph(Batch batch, double gradientScale)
    {
        using var scope = TensorScope.Enter();
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        Tensor ids = FromArray(batch.InputIds, shape);       // (B, T) int64
        Tensor targets = FromArray(batch.Labels, shape);     // (B, T) int64, already shifted
        using (EnableGrad())
        {
            Tensor loss = CausalLmLoss.FromTargets(_model.Forward(ids), targets, Reduction.Sum);
            FineTune.Torch.Torch.Backward([loss], [Full([], gradientScale, DType.Float32)]);
            return loss.Item<double>();
        }
    }

    /// <summary>Backward of one stage, then its gradients into the accumulators and the readiness boundary down.</summary>
    private Tensor? Backward(IModelLayer stage, int stageIndex, Tensor input, Tensor outputGrad, bool first, GradientReadiness? readiness)
    {
        Tensor? inputGrad;
        using (Weights(stageIndex, -1))
        {
            inputGrad = stage.Backward(input, outputGrad);
            outputGrad.Dispose();
            _parameters?.Harvest(_stageWeights[stageIndex], first); // before the weights (and their .grad) are let go
        }
        if (readiness is not null && _stageFirstElement[stageIndex] is long boundary)
            readiness.Advance(boundary);
        return inputGrad;
    }
}
