using FineTune.Offload.Optimizer;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Exact overlap under clipping and loss scaling: the update decided when backward ends and applied under the next
/// step's forward gives the losses, norms and weights of the synchronous step bit for bit over 20 steps — with the
/// clip set but not triggering, with it triggering every step, with dynamic loss scaling that skips a step, and with
/// accumulation over 4 micro-batches; states and weights on NVMe or not.
/// </summary>
public sealed class OverlapUnderClippingTests(Xunit.Abstractions.ITestOutputHelper output)
{
    [Theory]
    [InlineData("clip set, never triggers", 1e6, false, 1, false)]
    [InlineData("clip triggers every step", 0.05, false, 1, false)]
    [InlineData("loss scaling skips a step", 0.5, true, 1, false)]
    [InlineData("accumulation 4, clip triggers", 0.05, false, 4, false)]
    [InlineData("clip triggers, weights and states on nvme", 0.05, false, 1, true)]
    public void DeferredUpdateEqualsTheSynchronousStep(string name, double maxNorm, bool lossScaling, int accumulation, bool nvme)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(20 * accumulation, 2);
        (List<StepMetrics> Metrics, float[] Weights) Train(bool deferred)
        {
            using LlamaModel model = Model(tied: true);
            using var engine = new TrainingEngine(model, Options() with
            {
                AdamW = new() { LearningRate = 3e-3, MaxGradNorm = maxNorm },
                // 2^130 overflows fp32 at once: the first step is skipped and the scale backs off to 2^10
                LossScaler = lossScaling ? new DynamicLossScaler(Math.Pow(2, 130), backoffFactor: Math.Pow(2, -120)) : null,
                OverlapOptimizerWithBackward = deferred, AccumulationSteps = accumulation, SubGroupElementCount = 4096,
                OptimizerTier = nvme ? StateTier.Nvme : StateTier.Host, ParameterTier = nvme ? ParameterTier.Nvme : ParameterTier.Device,
                NvmeActivationLayers = nvme ? -1 : 0, NvmeDirectory = scratch.Path,
            });
            Assert.Equal(deferred, engine.DefersOptimizer);
            List<StepMetrics> metrics = batches.Chunk(accumulation).Select(window => engine.Step(window)).ToList();
            return (metrics, Weights(model));
        }
        var (synchronous, synchronousWeights) = Train(deferred: false);
        var (deferred, deferredWeights) = Train(deferred: true);
        Assert.Equal(synchronous.Select(m => m.Loss), deferred.Select(m => m.Loss));
        Assert.Equal(synchronous.Select(m => m.GradientNorm), deferred.Select(m => m.GradientNorm));
        Assert.Equal(synchronous.Select(m => m.Skipped), deferred.Select(m => m.Skipped));
        Assert.Equal(synchronousWeights, deferredWeights);
        int clipped = synchronous.Count(m => !m.Skipped && m.GradientNorm > maxNorm), skipped = synchronous.Count(m => m.Skipped);
        output.WriteLine($"{name}: {clipped} of 20 steps clipped, {skipped} skipped, loss {synchronous[0].Loss:0.0000} -> {synchronous[^1].Loss:0.0000}");
        if (maxNorm < 1)
            Assert.True(clipped >= 15, $"the case needs clipping to trigger: {clipped} of 20 steps clipped");
        else
            Assert.Equal(0, clipped);
        Assert.Equal(lossScaling ? 1 : 0, skipped);
    }
}
