using FineTune.Offload.Optimizer;
using FineTune.Torch.Distributed;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// ZeRO data parallelism in the engine, with two ranks as threads over loopback Gloo: 2 ranks with half of each
/// global batch train as 1 rank with all of it, and each rank holds half the optimizer state.
/// </summary>
public sealed class DataParallelTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const int Steps = 20;
    private const int GlobalBatch = 4;

    [Fact]
    public void TwoRanksWithHalfTheBatchEachTrainAsOneRankWithTheWholeBatch()
    {
        using var scratch = new ScratchDirectory();
        TrainingOptions Common(int microBatch, string nvme) => Options(microBatch) with
        {
            AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 0.5 },
            SubGroupElementCount = 4096, OptimizerTier = StateTier.Nvme, NvmeDirectory = nvme,
        };

        List<StepMetrics> reference;
        float[] referenceWeights;
        long referenceStateBytes, referenceFileBytes;
        string referenceDirectory = Directory.CreateDirectory(Path.Combine(scratch.Path, "one")).FullName;
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, Common(GlobalBatch, referenceDirectory)))
        {
            reference = Run(engine, Batches(Steps, GlobalBatch));
            engine.Settle();
            referenceStateBytes = engine.Optimizer.StateByteCount;
            referenceFileBytes = FileBytes(referenceDirectory);
            referenceWeights = Weights(model);
        }

        var models = new[] { Model(), Model() };
        var ranks = LoopbackRanks.Run(2, group =>
        {
            string directory = Directory.CreateDirectory(Path.Combine(scratch.Path, $"rank-{group.Rank}")).FullName;
            using var engine = new TrainingEngine(models[group.Rank], Common(GlobalBatch / 2, directory) with { DataParallelGroup = group });
            Assert.Equal((group.Rank, 2), engine.DataParallelRank);
            List<StepMetrics> metrics = Run(engine, Batches(Steps, GlobalBatch, rank: group.Rank, worldSize: 2));
            return (Metrics: metrics, Weights: Weights(models[group.Rank]), StateBytes: engine.Optimizer.StateByteCount, FileBytes: FileBytes(directory),
                Groups: engine.Optimizer.SubGroups.Count, Collectives: engine.Collectives!.TotalSeconds);
        });
        foreach (LlamaModel model in models)
            model.Dispose();

        double lossDifference = MaxRelativeDifference(ranks[0].Metrics.Select(m => m.Loss).ToList(), reference.Select(m => m.Loss).ToList());
        double normDifference = MaxRelativeDifference(ranks[0].Metrics.Select(m => m.GradientNorm).ToList(), reference.Select(m => m.GradientNorm).ToList());
        double weightDifference = MaxAbsoluteDifference(ranks[0].Weights, referenceWeights);
        output.WriteLine($"loss {reference[0].Loss:0.0000} -> {reference[^1].Loss:0.0000}; 2 ranks vs 1: max relative loss difference {lossDifference:0.0e+0}, norm {normDifference:0.0e+0}, max weight difference {weightDifference:0.0e+0}; " +
            $"{reference.Count(m => m.GradientNorm > 0.5)} of {Steps} steps clipped; states {ranks[0].StateBytes} + {ranks[1].StateBytes} of {referenceStateBytes} bytes ({ranks[0].Groups} + {ranks[1].Groups} sub-groups), files {ranks[0].FileBytes} + {ranks[1].FileBytes} of {referenceFileBytes}; collectives {ranks[0].Collectives:0.000} s");
        // every rank holds the same weights after each step: the owners' updates, gathered
        Assert.Equal(ranks[0].Weights, ranks[1].Weights);
        Assert.Equal(ranks[0].Metrics.Select(m => m.Loss), ranks[1].Metrics.Select(m => m.Loss));
        // Not bitwise: the 1-rank GEMMs reduce over all 4 rows at once, each rank's over its 2, and the halves are summed in
        // fp32 (reduce-scatter), the loss and the norm too; a few ulps a step (measured 1.8e-7 relative over 20 steps).
        Assert.True(lossDifference < 1e-5, $"losses differ by {lossDifference:0.0e+0} relative");
        Assert.True(normDifference < 1e-5, $"gradient norms differ by {normDifference:0.0e+0} relative");
        Assert.True(weightDifference < 1e-5, $"weights differ by {weightDifference:0.0e+0}");
        Assert.True(reference[^1].Loss < reference[0].Loss - 0.5, "the tiny model must learn for the comparison to mean something");
        Assert.Equal(referenceStateBytes, ranks[0].StateBytes + ranks[1].StateBytes);
        Assert.Equal(referenceFileBytes, ranks[0].FileBytes + ranks[1].FileBytes); // the NVMe swap files: each rank's share only
        Assert.True(Math.Abs(ranks[0].StateBytes - referenceStateBytes / 2) <= 12 * 4096, "each rank holds half the states, give or take one sub-group");
    }

    private static long FileBytes(string directory) => Directory.GetFiles(directory, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
}
