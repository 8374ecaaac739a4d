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
/// A large embedding or LM head computed in row blocks, so host memory holds one block and not the vocabulary: the
/// pools are sized by the block, the training is the unblocked one within rounding (the head's input gradient sums the
/// blocks in another order), and where the weights and gradients live changes no bit (resident or NVMe weights,
/// accumulated or consumed gradients, a tied head's gradient waiting on NVMe), tied or untied.
/// </summary>
public sealed class EdgeBlockTests(Xunit.Abstractions.ITestOutputHelper output)
{
    // 64 Ki-element blocks of 32-wide rows: 2,048 rows each; a vocabulary of 5,000 rows makes 3 blocks
    private static LlamaConfig BigVocabulary(bool tied) => Config(tied) with { VocabSize = 5000 };

    [Fact]
    public void TheEdgeSlotIsSizedByABlockNotByTheVocabulary()
    {
        LlamaConfig config = BigVocabulary(tied: true);
        TrainingOptions options = Options() with { ParameterTier = ParameterTier.Nvme, NvmeDirectory = "/tmp", EdgeBlockElementCount = 1 << 16 };
        MemoryPlan blocked = MemoryPlan.For(config, DType.Float32, options);
        MemoryPlan whole = MemoryPlan.For(config, DType.Float32, options with { EdgeBlockElementCount = 0 });
        Assert.Equal(3, blocked.Layout.Blocks(0)!.Count);
        Assert.Equal(blocked.Layout.Blocks(0)!.Select(b => b.Range), blocked.Layout.Blocks(blocked.Layout.Stages.Count - 1)!.Select(b => b.Range)); // tied: the same blocks
        long slot = blocked.Pool.Find(BufferKind.EdgeWeightSlots).ByteCount;
        Assert.Equal((1 << 16) * 4L, slot);
        Assert.True(whole.Pool.Find(BufferKind.EdgeWeightSlots).ByteCount >= 5000 * 32 * 4L);
        // every sub-group segment lies in one block, so each comes from one published gradient
        foreach (SubGroup group in blocked.Layout.SubGroups)
            foreach (SubGroupSegment segment in group.Segments.Where(s => s.Parameter == 0))
                Assert.Equal((segment.ParameterOffset) / (1 << 16), (segment.ParameterOffset + segment.ElementCount - 1) / (1 << 16));
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void BlocksTrainLikeTheWholeWeightAndTiersChangeNoBit(bool tied)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(12, 2);
        (List<double> Losses, float[] Weights) Train(long blockElements, ParameterTier weights, GradientTier gradients, double clip = 0, bool? defer = null)
        {
            using LlamaModel model = LlamaModel.Create(BigVocabulary(tied), 7, DType.Float32, Device.Cpu);
            using var engine = new TrainingEngine(model, Options() with
            {
                EdgeBlockElementCount = blockElements, ParameterTier = weights, GradientTier = gradients, NvmeDirectory = scratch.Path,
                OptimizerTier = StateTier.Nvme, SubGroupElementCount = 50_000, AdamW = new() { LearningRate = 3e-3, MaxGradNorm = clip },
                DeferTiedHeadGradient = defer,
            });
            Assert.Equal(blockElements > 0, engine.Plan.Layout.Blocks(0) is not null);
            var metrics = Run(engine, batches).ToList();
            // consumed gradients of a tied head: its blocks wait on NVMe for the embedding's, once per step each way
            // (64 tokens a step, more than the hidden size, so by default), or are made at the embedding's backward
            bool consumedTied = tied && blockElements > 0 && gradients is GradientTier.Consumed or GradientTier.Nvme;
            Assert.Equal(consumedTied && defer != true, engine.Plan.TiedBlocks is not null);
            Assert.Equal(consumedTied && defer == true, engine.Plan.DefersTiedHeadGradient);
            if (gradients == GradientTier.Nvme) // every gradient written once a step (read back by the next step's update)
                Assert.All(metrics, m => Assert.Equal(engine.Plan.TrafficPerStep(1).GradientWriteBytes, m.Traffic.GradientWriteBytes));
            else
                Assert.All(metrics, m => Assert.Equal((engine.Plan.TiedGradientFileByteCount, engine.Plan.TiedGradientFileByteCount), (m.Traffic.GradientWriteBytes, m.Traffic.GradientReadBytes)));
            return (metrics.Select(m => m.Loss).ToList(), Weights(model));
        }
        var whole = Train(0, ParameterTier.Device, GradientTier.HostAccumulators);
        var blocked = Train(1 << 16, ParameterTier.Device, GradientTier.HostAccumulators);
        double lossDifference = MaxRelativeDifference(blocked.Losses, whole.Losses);
        double weightDifference = MaxAbsoluteDifference(blocked.Weights, whole.Weights);
        output.WriteLine($"tied={tied}: blocked vs whole over 12 steps: max relative loss difference {lossDifference:0.0e+0}, max |weight difference| {weightDifference:0.0e+0}");
        Assert.Equal(whole.Losses[0], blocked.Losses[0], 5); // the forward of step 1 differs only in how the logits were laid out
        Assert.True(lossDifference < 1e-4, $"{lossDifference}");
        Assert.True(weightDifference < 1e-4, $"{weightDifference}");
        foreach (var other in new[]
        {
            Train(1 << 16, ParameterTier.Nvme, GradientTier.HostAccumulators),
            Train(1 << 16, ParameterTier.Device, GradientTier.Consumed),
            Train(1 << 16, ParameterTier.Nvme, GradientTier.Consumed),
            Train(1 << 16, ParameterTier.Device, GradientTier.Consumed, defer: true),
            Train(1 << 16, ParameterTier.Nvme, GradientTier.Consumed, defer: true),
        })
        {
            Assert.Equal(blocked.Losses, other.Losses);
            Assert.Equal(blocked.Weights, other.Weights);
        }
        // clipping: the update under the next forward, by blocks too
        var clipped = Train(1 << 16, ParameterTier.Nvme, GradientTier.HostAccumulators, clip: 0.5);
        Assert.Equal(Train(1 << 16, ParameterTier.Device, GradientTier.HostAccumulators, clip: 0.5).Weights, clipped.Weights);
        // and with the gradients waiting on NVMe, block by block (the tied head's contribution summed into fp32 first)
        var spilled = Train(1 << 16, ParameterTier.Nvme, GradientTier.Nvme, clip: 0.5);
        Assert.Equal(clipped.Losses, spilled.Losses);
        Assert.Equal(clipped.Weights, spilled.Weights);
        var deferred = Train(1 << 16, ParameterTier.Nvme, GradientTier.Nvme, clip: 0.5, defer: true);
        Assert.Equal(clipped.Losses, deferred.Losses);
        Assert.Equal(clipped.Weights, deferred.Weights);
    }

    /// <summary>
    /// bf16, the dtype the deferral is for: the tied head's share made at the embedding's backward from the kept logits'
    /// gradient is the head backward's own bits (as accumulated, and as waiting on NVMe), and moves nothing on NVMe.
    /// </summary>
    [Fact]
    public void ADeferredTiedHeadGradientIsTheHeadBackwardsOwnInBf16()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6, 1);
        (List<double> Losses, float[] Weights) Train(GradientTier gradients, bool? defer)
        {
            using LlamaModel model = LlamaModel.Create(BigVocabulary(tied: true), 7, DType.BFloat16, Device.Cpu);
            using var engine = new TrainingEngine(model, Options(microBatchSize: 1) with
            {
                EdgeBlockElementCount = 1 << 16, ParameterTier = ParameterTier.Nvme, GradientTier = gradients, NvmeDirectory = scratch.Path,
                OptimizerTier = StateTier.Nvme, SubGroupElementCount = 50_000, AdamW = new() { LearningRate = 3e-3 }, DeferTiedHeadGradient = defer, Precision = PrecisionMode.BFloat16,
            });
            var metrics = Run(engine, batches).ToList();
            if (gradients == GradientTier.Consumed)
            {
                Assert.Equal(defer != false, engine.Plan.DefersTiedHeadGradient); // 32 tokens a step, the hidden size: deferred by default
                long expected = engine.Plan.DefersTiedHeadGradient ? 0 : engine.Plan.TiedGradientFileByteCount;
                Assert.True(expected > 0 || engine.Plan.DefersTiedHeadGradient);
                Assert.All(metrics, m => Assert.Equal((expected, expected), (m.Traffic.GradientWriteBytes, m.Traffic.GradientReadBytes)));
            }
            return (metrics.Select(m => m.Loss).ToList(), Weights(model));
        }
        var accumulated = Train(GradientTier.HostAccumulators, defer: null);
        foreach (var other in new[] { Train(GradientTier.Consumed, defer: null), Train(GradientTier.Consumed, defer: false) })
        {
            Assert.Equal(accumulated.Losses, other.Losses);
            Assert.Equal(accumulated.Weights, other.Weights);
        }
    }
}
