using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Gradients;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// The overlapped update with its top layers moved under the next forward (Updates/SplitUpdate): the same bits as the
/// whole update following backward, tied or untied, fp32 or bf16, weights resident or on NVMe; the held gradients are
/// the plan's; a step that fails leaves nothing held for the next.
/// </summary>
public sealed class SplitUpdateTests
{
    [Theory]
    [InlineData(false, false, ParameterTier.Device)]
    [InlineData(true, true, ParameterTier.Device)]
    [InlineData(false, true, ParameterTier.Nvme)]
    [InlineData(true, false, ParameterTier.Nvme)]
    public void TheTopLayersUpdatedUnderTheNextForwardGiveTheOverlappedBits(bool tied, bool bf16, ParameterTier weights)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(12, 2);
        (List<double> Losses, List<double> Norms, float[] Weights) Train(long underForward)
        {
            using LlamaModel model = Model(bf16 ? DType.BFloat16 : DType.Float32, tied);
            TrainingOptions options = Options() with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32, ParameterTier = weights,
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
                UpdateUnderForwardElementCount = underForward,
            };
            using var engine = new TrainingEngine(model, options);
            Assert.Equal(GradientTier.Consumed, engine.GradientTier);
            if (underForward > 0)
            {
                long split = engine.Plan.SplitElement ?? throw new Xunit.Sdk.XunitException("the plan did not split the update");
                Assert.InRange(engine.Plan.Layout.ElementCount - split, 1, underForward);
                Assert.Contains("under the next forward", engine.UpdateStrategy);
            }
            List<StepMetrics> metrics = Run(engine, batches);
            // what was alive at once: the bound of about two stages, plus the held top gradients
            Assert.InRange(engine.PeakConsumedGradientByteCount, 1, engine.Plan.ConsumedGradientBoundByteCount + engine.Plan.HeldGradientByteCount);
            engine.Settle();
            return (metrics.Select(m => m.Loss).ToList(), metrics.Select(m => m.GradientNorm).ToList(), Weights(model));
        }
        var whole = Train(0);
        long parameters = FineTune.Trainer.Planning.MemoryPlan.For(Config(tied), DType.Float32, Options()).Layout.ElementCount;
        var split = Train(parameters * 2 / 5);
        Assert.Equal(whole.Losses, split.Losses);
        Assert.Equal(whole.Norms, split.Norms);
        Assert.Equal(whole.Weights, split.Weights);
        Assert.True(split.Losses[^1] < split.Losses[0], "the model should learn");
    }

    [Fact]
    public void AFailedStepLeavesNoHeldGradientForTheNext()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(4, 2);
        List<double> Train(bool failOnce)
        {
            using LlamaModel model = Model();
            using var engine = new TrainingEngine(model, Options() with
            {
                OptimizerTier = StateTier.Nvme, NvmeDirectory = scratch.Path, SubGroupElementCount = 3000,
                UpdateUnderForwardElementCount = FineTune.Trainer.Planning.MemoryPlan.For(Config(), DType.Float32, Options()).Layout.ElementCount / 2,
            });
            var losses = new List<double> { engine.Step(batches[0]).Loss };
            if (failOnce)
                Assert.ThrowsAny<ArgumentException>(() => engine.Step([batches[1], batches[2]])); // refused before anything runs
            losses.AddRange(batches.Skip(1).Select(b => engine.Step(b).Loss));
            return losses;
        }
        Assert.Equal(Train(false), Train(true));
    }
}
