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
/// Gradients on NVMe for an update that waits for the global norm: with clipping or loss scaling and the states or
/// weights on NVMe, each final gradient is written to NVMe as backward makes it and read back by the update under the
/// next forward, so no per-parameter gradient buffer exists in host memory; the losses, norms and weights are those of
/// fp32 host accumulators bit for bit (clip triggering, a loss-scaling skip, tied and blocked edge weights, bf16,
/// weights on NVMe), and the step's traffic is the plan's.
/// </summary>
public sealed class NvmeGradientTests
{
    [Fact]
    public void ClippingWithStatesOnNvmeKeepsNoGradientInHostMemory()
    {
        using var scratch = new ScratchDirectory();
        using LlamaModel model = Model(tied: true);
        TrainingOptions options = Options() with { AdamW = new() { MaxGradNorm = 1 }, OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path };
        long accumulators = MemoryPlan.For(model.Config, DType.Float32, options).Layout.GradientByteCount;
        // auto: to NVMe once the fp32 accumulators would take more than a quarter of the host budget; without one they stay
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, options).Gradients);
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, options with { HostBudgetByteCount = 4 * accumulators }).Gradients);
        MemoryPlan plan = MemoryPlan.For(model.Config, DType.Float32, options with { HostBudgetByteCount = 4 * accumulators - 1 });
        Assert.Equal(GradientTier.Nvme, plan.Gradients);
        Assert.Equal(0, plan.GradientPoolByteCount);
        Assert.Equal(plan.Layout.ElementCount * 4, plan.GradientFileByteCount, tolerance: plan.GradientPieces.Count * 4096);
        using var engine = new TrainingEngine(model, options with { GradientTier = GradientTier.Nvme });
        Assert.Equal(GradientTier.Nvme, engine.GradientTier);
        Assert.Equal(0, engine.ReservedByteCountOf(BufferKind.GradientAccumulators));
        Assert.True(engine.DefersOptimizer);
        // the training state in host memory, or accumulation: the accumulators stay
        var tight = options with { HostBudgetByteCount = accumulators };
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, tight with { OptimizerTier = StateTier.Host }).Gradients);
        Assert.Equal(GradientTier.HostAccumulators, MemoryPlan.For(model.Config, DType.Float32, tight with { AccumulationSteps = 2 }).Gradients);
        Assert.Throws<ArgumentException>(() => MemoryPlan.For(model.Config, DType.Float32, options with { AccumulationSteps = 2, GradientTier = GradientTier.Nvme }));
    }

    [Theory]
    [InlineData(false, false, ParameterTier.Device, false)]
    [InlineData(true, false, ParameterTier.Device, false)]
    [InlineData(true, true, ParameterTier.Device, false)]
    [InlineData(true, true, ParameterTier.Nvme, false)]
    [InlineData(true, false, ParameterTier.Nvme, true)]
    public void NvmeGradientsGiveTheBitsOfHostAccumulators(bool tied, bool bf16, ParameterTier weights, bool lossScaling)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(12, 2);
        (List<StepMetrics> Metrics, float[] Weights, MemoryPlan Plan) Train(GradientTier tier)
        {
            using LlamaModel model = Model(bf16 ? DType.BFloat16 : DType.Float32, tied);
            TrainingOptions options = Options() with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32, GradientTier = tier, ParameterTier = weights,
                AdamW = new() { LearningRate = 3e-3, MaxGradNorm = lossScaling ? 1e6 : 0.05 },
                // 2^130 overflows fp32 at once: the first step is skipped and the scale backs off to 2^10
                LossScaler = lossScaling ? new DynamicLossScaler(Math.Pow(2, 130), backoffFactor: Math.Pow(2, -120)) : null,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
            };
            using var engine = new TrainingEngine(model, options);
            Assert.Equal(tier, engine.GradientTier);
            return (Run(engine, batches), Weights(model), engine.Plan);
        }
        var (host, hostWeights, _) = Train(GradientTier.HostAccumulators);
        var (nvme, nvmeWeights, plan) = Train(GradientTier.Nvme);
        Assert.Equal(host.Select(m => m.Loss), nvme.Select(m => m.Loss));
        Assert.Equal(host.Select(m => m.GradientNorm), nvme.Select(m => m.GradientNorm));
        Assert.Equal(host.Select(m => m.Skipped), nvme.Select(m => m.Skipped));
        Assert.Equal(hostWeights, nvmeWeights);
        Assert.Equal(lossScaling ? 1 : 0, nvme.Count(m => m.Skipped));
        if (!lossScaling)
            Assert.True(nvme.Count(m => m.GradientNorm > 0.05) >= 10, "the case needs clipping to trigger");
        // every gradient written once per step; the update of the step before read them back under this forward
        Assert.Equal(plan.TrafficPerStep(1).GradientWriteBytes, nvme[^1].Traffic.GradientWriteBytes);
        Assert.Equal(plan.TrafficPerStep(1).GradientReadBytes, nvme[^1].Traffic.GradientReadBytes, tolerance: plan.Layout.SubGroups.Sum(g => g.Segments.Count) * 8192.0);
    }
}
