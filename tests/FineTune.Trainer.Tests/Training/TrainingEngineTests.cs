using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Baselines;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// The offloaded step against the in-memory baseline (libtorch AdamW, everything in tensors) on the same seed and
/// data, and the invariants of the offloaded path itself: overlap and tiers change no bit, accumulation equals a big
/// batch, skipped steps change nothing, resume from saved optimizer state is bit-exact.
/// </summary>
public sealed class TrainingEngineTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Fact]
    public void OffloadedOnNvmeMatchesInMemoryFor20Steps()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(20, 2);
        using LlamaModel offloadedModel = Model(), inMemoryModel = Model();
        List<StepMetrics> offloaded, inMemory;
        float[] offloadedWeights, inMemoryWeights;
        using (var engine = new TrainingEngine(offloadedModel, Options() with
        {
            OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1, NvmeDirectory = scratch.Path,
        }))
        {
            Assert.StartsWith("host 0 + nvme 3", engine.ActivationLocation);
            Assert.StartsWith("nvme", engine.Optimizer!.StateLocation);
            offloaded = Run(engine, batches);
            Assert.All(offloaded, m => Assert.True(m.BytesRead > 0 && m.BytesWritten > 0));
            offloadedWeights = Weights(offloadedModel);
        }
        using (ITrainer engine = NewTrainer(inMemoryModel, Options(), TrainingMode.InMemory))
        {
            inMemory = Run(engine, batches);
            inMemoryWeights = Weights(inMemoryModel);
        }
        output.WriteLine($"20 steps: max relative loss difference {MaxRelativeDifference(offloaded.Select(m => m.Loss).ToList(), inMemory.Select(m => m.Loss).ToList()):0.00e+0}, " +
            $"max |weight difference| {MaxAbsoluteDifference(offloadedWeights, inMemoryWeights):0.00e+0}, loss {offloaded[0].Loss:0.0000} -> {offloaded[^1].Loss:0.0000}");
        // Step 1 sees identical weights and identical forward arithmetic: the loss is bit-identical.
        Assert.Equal(inMemory[0].Loss, offloaded[0].Loss);
        // After that the two AdamW implementations (FineTune's CPU SIMD kernel, libtorch's) differ in rounding.
        Assert.True(MaxRelativeDifference(offloaded.Select(m => m.Loss).ToList(), inMemory.Select(m => m.Loss).ToList()) < 1e-6);
        Assert.True(MaxRelativeDifference(offloaded.Select(m => m.GradientNorm).ToList(), inMemory.Select(m => m.GradientNorm).ToList()) < 1e-4);
        Assert.True(MaxAbsoluteDifference(offloadedWeights, inMemoryWeights) < 1e-5);
        Assert.True(offloaded[^1].Loss < offloaded[0].Loss - 0.5, $"loss should fall: {offloaded[0].Loss} -> {offloaded[^1].Loss}");
        // The model is usable after the engine is gone (its parameters own their memory again).
        Assert.Equal(offloadedWeights, Weights(offloadedModel));
    }

    [Fact]
    public void OverlapAndTiersChangeNoBit()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6, 2);
        (List<double> Losses, List<double> Norms, float[] Weights) Train(TrainingOptions options)
        {
            using LlamaModel model = Model(tied: true);
            using var engine = new TrainingEngine(model, options);
            Assert.Equal(options.OverlapOptimizerWithBackward, engine.OverlapsOptimizer);
            List<StepMetrics> metrics = Run(engine, batches);
            return (metrics.Select(m => m.Loss).ToList(), metrics.Select(m => m.GradientNorm).ToList(), Weights(model));
        }
        TrainingOptions host = Options() with { OverlapOptimizerWithBackward = false };
        var reference = Train(host);
        var overlapped = Train(host with { OverlapOptimizerWithBackward = true });
        var nvme = Train(host with { OverlapOptimizerWithBackward = true, OptimizerTier = StateTier.Nvme, NvmeActivationLayers = 2, NvmeDirectory = scratch.Path });
        foreach (var other in new[] { overlapped, nvme })
        {
            Assert.Equal(reference.Losses, other.Losses);
            Assert.Equal(reference.Norms, other.Norms);
            Assert.Equal(reference.Weights, other.Weights);
        }
        Assert.Empty(Directory.GetFiles(scratch.Path)); // swap files are deleted with the engine
    }

    [Theory]
    [InlineData(false)] // state reads prefetched during the last backward
    [InlineData(true)]  // decided after backward, applied under the next forward
    public void PrefetchingStatesDuringBackwardChangesNoBitWithClippingOrSkips(bool deferred)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(5, 2);
        (List<StepMetrics> Metrics, float[] Weights) Train(bool overlap)
        {
            using LlamaModel model = Model();
            var scaler = new DynamicLossScaler(Math.Pow(2, 140), backoffFactor: Math.Pow(2, -40)); // step 1 overflows and is skipped
            using var engine = new TrainingEngine(model, Options() with
            {
                AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 0.5 }, LossScaler = scaler, OverlapOptimizerWithBackward = overlap,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 4096, DeferUpdateToNextForward = deferred,
            });
            Assert.Equal(overlap && !deferred, engine.PrefetchesOptimizerStates);
            Assert.Equal(overlap && deferred, engine.DefersOptimizer);
            Assert.False(engine.OverlapsOptimizer);
            return (Run(engine, batches), Weights(model));
        }
        var (prefetched, prefetchedWeights) = Train(overlap: true);
        var (plain, plainWeights) = Train(overlap: false);
        Assert.Equal(new[] { true, false, false, false, false }, prefetched.Select(m => m.Skipped));
        Assert.Equal(plain.Select(m => m.Loss), prefetched.Select(m => m.Loss));
        Assert.Equal(plain.Select(m => m.GradientNorm), prefetched.Select(m => m.GradientNorm));
        Assert.Equal(plainWeights, prefetchedWeights);
    }

    [Theory]
    [InlineData(TrainingMode.Offloaded)]
    [InlineData(TrainingMode.InMemory)]
    public void AccumulationOf4EqualsOneBatchOf4TimesTheRows(TrainingMode mode)
    {
        List<Batch> big = Batches(4, 8);
        using LlamaModel accumulatedModel = Model(), bigModel = Model();
        List<StepMetrics> accumulated, single;
        using (ITrainer engine = NewTrainer(accumulatedModel, Options(microBatchSize: 2) with { AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 1.0 } }, mode))
            accumulated = big.Select(b => engine.Step([Rows(b, 0, 2), Rows(b, 2, 2), Rows(b, 4, 2), Rows(b, 6, 2)])).ToList();
        using (ITrainer engine = NewTrainer(bigModel, Options(microBatchSize: 8) with { AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 1.0 } }, mode))
            single = Run(engine, big);
        output.WriteLine($"{mode}: accumulation 4x2 vs 1x8: max relative loss difference {MaxRelativeDifference(accumulated.Select(m => m.Loss).ToList(), single.Select(m => m.Loss).ToList()):0.00e+0}, " +
            $"max |weight difference| {MaxAbsoluteDifference(Weights(accumulatedModel), Weights(bigModel)):0.00e+0}");
        Assert.Equal(single.Select(m => m.TokenCount), accumulated.Select(m => m.TokenCount));
        Assert.True(MaxRelativeDifference(accumulated.Select(m => m.Loss).ToList(), single.Select(m => m.Loss).ToList()) < 1e-5);
        Assert.True(MaxRelativeDifference(accumulated.Select(m => m.GradientNorm).ToList(), single.Select(m => m.GradientNorm).ToList()) < 1e-4);
        Assert.True(MaxAbsoluteDifference(Weights(accumulatedModel), Weights(bigModel)) < 1e-5);
    }

    [Fact]
    public void InMemoryWithoutRecomputeTrainsTheSame()
    {
        List<Batch> batches = Batches(5, 2);
        List<double> Train(bool checkpointing)
        {
            using LlamaModel model = Model(tied: true);
            using ITrainer engine = NewTrainer(model, Options(), TrainingMode.InMemory, recompute: checkpointing);
            return Run(engine, batches).Select(m => m.Loss).ToList();
        }
        List<double> recomputed = Train(true), fullGraph = Train(false);
        Assert.Equal(fullGraph[0], recomputed[0], 12);
        Assert.True(MaxRelativeDifference(recomputed, fullGraph) < 1e-6);
        using LlamaModel offloadedModel = Model();
        Assert.Throws<ArgumentException>(() => NewTrainer(offloadedModel, Options(), TrainingMode.Offloaded, recompute: false));
    }

    [Fact]
    public void ClippingAndScheduleMatchInMemory()
    {
        List<Batch> batches = Batches(8, 2);
        var schedule = new LearningRateSchedule(ScheduleKind.Cosine, 5e-3, warmupSteps: 2, totalSteps: 8);
        List<StepMetrics> Train(TrainingMode mode)
        {
            using LlamaModel model = Model();
            using ITrainer engine = NewTrainer(model, Options() with { AdamW = new() { MaxGradNorm = 0.5 }, Schedule = schedule }, mode);
            Assert.False(engine.OverlapsOptimizer);
            return Run(engine, batches);
        }
        List<StepMetrics> offloaded = Train(TrainingMode.Offloaded), inMemory = Train(TrainingMode.InMemory);
        Assert.Equal(Enumerable.Range(0, 8).Select(s => schedule.At(s)), offloaded.Select(m => m.LearningRate));
        Assert.Equal(0.0, offloaded[0].LearningRate);
        Assert.True(offloaded.Skip(1).All(m => m.GradientNorm > 0.5), "the test needs norms above the clip");
        Assert.True(MaxRelativeDifference(offloaded.Select(m => m.Loss).ToList(), inMemory.Select(m => m.Loss).ToList()) < 1e-6);
    }

    [Theory]
    [InlineData(TrainingMode.Offloaded)]
    [InlineData(TrainingMode.InMemory)]
    public void OverflowingLossScaleSkipsTheStepAndChangesNothing(TrainingMode mode)
    {
        List<Batch> batches = Batches(3, 2);
        List<StepMetrics> plain, scaled;
        using (LlamaModel model = Model())
        using (ITrainer engine = NewTrainer(model, Options(), mode))
            plain = Run(engine, batches.Skip(1));
        using (LlamaModel model = Model())
        {
            // 2^140 overflows fp32 (max ~2^128): the seeded gradient is infinite, the step is skipped, the scale backs
            // off by 2^-40 to 2^100, where every gradient is finite; powers of two make unscaling exact.
            var scaler = new DynamicLossScaler(Math.Pow(2, 140), backoffFactor: Math.Pow(2, -40));
            using ITrainer engine = NewTrainer(model, Options() with { LossScaler = scaler }, mode);
            float[] before = Weights(model);
            scaled = [engine.Step(batches[1])];
            Assert.True(scaled[0].Skipped);
            Assert.Equal(before, Weights(model));
            scaled.AddRange(Run(engine, batches.Skip(1)));
            Assert.Equal(1, scaler.SkippedSteps);
            Assert.Equal(Math.Pow(2, 100), scaler.Scale);
            Assert.Equal(3, engine.StepCount);
        }
        Assert.Equal(plain[0].Loss, scaled[0].Loss);
        Assert.True(MaxRelativeDifference(scaled.Skip(1).Select(m => m.Loss).ToList(), plain.Select(m => m.Loss).ToList()) < 1e-6);
        Assert.True(MaxRelativeDifference(scaled.Skip(1).Select(m => m.GradientNorm).ToList(), plain.Select(m => m.GradientNorm).ToList()) < 1e-6);
    }

    [Fact]
    public void ResumingFromSavedOptimizerStateIsBitExact()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(8, 2);
        var schedule = new LearningRateSchedule(ScheduleKind.Linear, 3e-3, warmupSteps: 2, totalSteps: 8);
        TrainingOptions options = Options() with { Schedule = schedule, OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path };
        List<double> straight;
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, options))
            straight = Run(engine, batches).Select(m => m.Loss).ToList();

        string saved = Path.Combine(scratch.Path, "optimizer");
        Directory.CreateDirectory(saved);
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, options))
        {
            Run(engine, batches.Take(5));
            engine.SaveOptimizerState(saved);
        }
        using (LlamaModel model = Model(seed: 99)) // other weights: the saved masters must replace them
        using (var engine = new TrainingEngine(model, options))
        {
            engine.LoadOptimizerState(saved);
            engine.RestoreStepCount(5);
            List<double> resumed = Run(engine, batches.Skip(5)).Select(m => m.Loss).ToList();
            Assert.Equal(straight.Skip(5), resumed);
        }
    }

    [Fact]
    public void MismatchedPrecisionAndOversizedBatchesAreRefused()
    {
        using LlamaModel model = Model();
        var error = Assert.Throws<UserErrorException>(() => new TrainingEngine(model, Options() with { Precision = PrecisionMode.BFloat16 }));
        Assert.Contains("BFloat16", error.Message);
        using var engine = new TrainingEngine(model, Options(microBatchSize: 1));
        Assert.Throws<ArgumentException>(() => engine.Step(Batches(1, 2)[0]));
        using LlamaModel other = Model();
        Assert.Throws<UserErrorException>(() => new TrainingEngine(other, Options() with { HostBudgetByteCount = 1 << 16 }));
    }
}
