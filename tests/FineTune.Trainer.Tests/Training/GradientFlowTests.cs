using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Planning;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Gradients;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Gradients that never pile up in host memory: with one micro-batch per step and the update overlapped with backward,
/// no per-parameter gradient buffer exists (the pool holds none) and the gradients handed straight from backward to the
/// optimizer give the same bits as fp32 host accumulators, tied or untied, fp32 or bf16, weights resident or on NVMe.
/// </summary>
public sealed class GradientFlowTests
{
    [Fact]
    public void ConsumedGradientsTakeNoHostMemoryPerParameter()
    {
        using LlamaModel model = Model();
        TrainingOptions options = Options();
        MemoryPlan plan = MemoryPlan.For(model.Config, DType.Float32, options);
        Assert.Equal(GradientTier.Consumed, plan.Gradients);
        Assert.Equal(0, plan.GradientPoolByteCount);
        using var engine = new TrainingEngine(model, options);
        Assert.Equal(GradientTier.Consumed, engine.GradientTier);
        Assert.Equal(0, engine.ReservedByteCountOf(BufferKind.GradientAccumulators));
        Assert.True(engine.OverlapsOptimizer);
        // clipping needs the norm before any update: gradients must then wait in accumulators
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, options with { AdamW = new() { MaxGradNorm = 1 } }).Gradients);
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, options with { AccumulationSteps = 2 }).Gradients);
        Assert.Throws<ArgumentException>(() => engine.Step(Batches(2, 2))); // planned for one micro-batch per step
    }

    [Theory]
    [InlineData(false, false, ParameterTier.Device)]
    [InlineData(true, false, ParameterTier.Device)]
    [InlineData(true, true, ParameterTier.Device)]
    [InlineData(true, false, ParameterTier.Nvme)]
    [InlineData(false, true, ParameterTier.Nvme)]
    public void ConsumedGradientsGiveTheBitsOfHostAccumulators(bool tied, bool bf16, ParameterTier weights)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(20, 2);
        (List<double> Losses, List<double> Norms, float[] Weights, long Peak) Train(GradientTier tier)
        {
            using LlamaModel model = Model(bf16 ? DType.BFloat16 : DType.Float32, tied);
            TrainingOptions options = Options() with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32, GradientTier = tier, ParameterTier = weights,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
            };
            using var engine = new TrainingEngine(model, options);
            Assert.Equal(tier, engine.GradientTier);
            List<StepMetrics> metrics = Run(engine, batches);
            if (tier == GradientTier.Consumed)
            {
                // what was alive at once stayed under the plan's bound of about two stages
                Assert.InRange(engine.PeakConsumedGradientByteCount, 1, engine.Plan.ConsumedGradientBoundByteCount);
            }
            return (metrics.Select(m => m.Loss).ToList(), metrics.Select(m => m.GradientNorm).ToList(), Weights(model),
                engine.PeakConsumedGradientByteCount);
        }
        var accumulated = Train(GradientTier.HostAccumulators);
        var consumed = Train(GradientTier.Consumed);
        Assert.Equal(accumulated.Losses, consumed.Losses);
        Assert.Equal(accumulated.Norms, consumed.Norms);
        Assert.Equal(accumulated.Weights, consumed.Weights);
        Assert.True(consumed.Losses[^1] < consumed.Losses[0], "the model should learn");
    }

    [Fact]
    public async Task OneSubGroupLargerThanEveryStageStillCompletes()
    {
        // the update of the only sub-group needs every gradient at once: back-pressure must not wait for it to free some
        List<Batch> batches = Batches(3, 2);
        List<double> Train(GradientTier tier)
        {
            using LlamaModel model = Model();
            using var engine = new TrainingEngine(model, Options() with { GradientTier = tier, SubGroupElementCount = 1 << 24 });
            Assert.Single(engine.Optimizer.SubGroups);
            return Run(engine, batches).Select(m => m.Loss).ToList();
        }
        List<double> consumed = await Task.Run(() => Train(GradientTier.Consumed)).WaitAsync(TimeSpan.FromMinutes(2)); // a deadlock times out
        Assert.Equal(Train(GradientTier.HostAccumulators), consumed);
    }

    [Fact]
    public void WhatConsumedGradientsHoldDoesNotGrowWithTheLayerCount()
    {
        // the bound is about two stages: a model four times deeper holds no more gradient memory at once
        long Bound(int layers) => MemoryPlan.For(Config() with { LayerCount = layers, VocabSize = 64 }, DType.BFloat16,
            Options() with { Precision = PrecisionMode.BFloat16 }).ConsumedGradientBoundByteCount;
        Assert.Equal(Bound(8), Bound(32));
        long accumulators = MemoryPlan.For(Config() with { LayerCount = 32, VocabSize = 64 }, DType.BFloat16,
            Options() with { Precision = PrecisionMode.BFloat16, GradientTier = GradientTier.HostAccumulators }).GradientPoolByteCount;
        Assert.True(Bound(32) * 8 < accumulators, $"consumed {Bound(32)} vs accumulators {accumulators} bytes");
    }
}
