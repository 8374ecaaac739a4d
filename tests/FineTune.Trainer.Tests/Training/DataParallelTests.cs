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
/// global batch train as 1 rank with all of it (within the rounding of a split batch; bit for bit as 1 rank that
/// accumulates the two halves), each rank holds half the optimizer state, and saved states resume bit for bit on as
/// many ranks and re-partition onto another count.
/// </summary>
[Collection(AloneCollection.Name)]
public sealed class DataParallelTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    // Two ranks as threads call libtorch at once and share its intra-op threads: how many each call gets varies with
    // timing, and with it a reduction's order and last bits (seen twice in full suites). One thread per call makes
    // every run's arithmetic the same, as separate rank processes with their own threads have it.
    private readonly int _threads = SingleThreaded();

    private static int SingleThreaded()
    {
        int threads = FineTune.Torch.Torch.NumThreads;
        FineTune.Torch.Torch.SetNumThreads(1);
        return threads;
    }

    public void Dispose() => FineTune.Torch.Torch.SetNumThreads(_threads);

    private const int Steps = 20;
    private const int GlobalBatch = 4;

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void TwoRanksWithHalfTheBatchEachTrainAsOneRankWithTheWholeBatch(bool bf16, bool weightsOnNvme)
    {
        using var scratch = new ScratchDirectory();
        TrainingOptions Common(int microBatch, string nvme) => Options(microBatch) with
        {
            Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
            AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 0.5 },
            SubGroupElementCount = 4096, OptimizerTier = StateTier.Nvme, NvmeDirectory = nvme,
            ParameterTier = weightsOnNvme ? ParameterTier.Nvme : ParameterTier.Device,
            ResidualMasters = false, // the ranks keep whole fp32 masters: their shares must add up to the one rank's states
        };
        LlamaModel Model() => TinyTraining.Model(bf16 ? FineTune.Torch.DType.BFloat16 : FineTune.Torch.DType.Float32);

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

        // 1 rank with the same two halves as the micro-batches of one accumulation window: the same arithmetic as 2 ranks
        // (each half's gradients in fp32, then the second added to the first), so the same bits but for the norm's order
        List<StepMetrics> accumulated;
        float[] accumulatedWeights;
        string accumulatedDirectory = Directory.CreateDirectory(Path.Combine(scratch.Path, "accumulated")).FullName;
        using (LlamaModel model = Model())
        using (var engine = new TrainingEngine(model, Common(GlobalBatch / 2, accumulatedDirectory) with { AccumulationSteps = 2 }))
        {
            accumulated = Batches(Steps, GlobalBatch).Select(b => engine.Step([Rows(b, 0, GlobalBatch / 2), Rows(b, GlobalBatch / 2, GlobalBatch / 2)])).ToList();
            accumulatedWeights = Weights(model);
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
        output.WriteLine($"{(bf16 ? "bf16" : "fp32")}, weights {(weightsOnNvme ? "on nvme" : "resident")}: loss {reference[0].Loss:0.0000} -> {reference[^1].Loss:0.0000}; 2 ranks vs 1: max relative loss difference {lossDifference:0.0e+0}, norm {normDifference:0.0e+0}, max weight difference {weightDifference:0.0e+0}; " +
            $"{reference.Count(m => m.GradientNorm > 0.5)} of {Steps} steps clipped; states {ranks[0].StateBytes} + {ranks[1].StateBytes} of {referenceStateBytes} bytes ({ranks[0].Groups} + {ranks[1].Groups} sub-groups), files {ranks[0].FileBytes} + {ranks[1].FileBytes} of {referenceFileBytes}; collectives {ranks[0].Collectives:0.000} s");
        // every rank holds the same weights after each step: the owners' updates, gathered
        Assert.Equal(ranks[0].Weights, ranks[1].Weights);
        Assert.Equal(ranks[0].Metrics.Select(m => m.Loss), ranks[1].Metrics.Select(m => m.Loss));
        // the norm's partial sums are added per rank, then over ranks: the clip factor it gives rounds to the same float
        Assert.Equal(accumulated.Select(m => m.Loss), ranks[0].Metrics.Select(m => m.Loss));
        Assert.Equal(accumulatedWeights, ranks[0].Weights);
        Assert.True(MaxRelativeDifference(ranks[0].Metrics.Select(m => m.GradientNorm).ToList(), accumulated.Select(m => m.GradientNorm).ToList()) < 1e-12);
        // Not bitwise: the 1-rank GEMMs reduce over all 4 rows at once, each rank's over its 2, and the halves are summed in
        // fp32 (reduce-scatter), the loss and the norm too. fp32: a few ulps a step (measured 1.8e-7 relative over 20
        // steps). bf16: each rank's weight gradient is rounded to bf16 from its 2 rows before the fp32 sum, the 1-rank one
        // once from 4 rows, so gradients differ by up to half a bf16 ulp (2^-9 relative) and a weight whose master lies
        // near a rounding edge lands one bf16 ulp away (measured: losses 1.8e-4, norms 4.3e-3 relative).
        (double loss, double norm) = bf16 ? (2e-3, 4e-2) : (1e-5, 1e-5);
        Assert.True(lossDifference < loss, $"losses differ by {lossDifference:0.0e+0} relative");
        Assert.True(normDifference < norm, $"gradient norms differ by {normDifference:0.0e+0} relative");
        // bf16 weights: measured as the relative L2 distance of the whole weight vector (a near-zero weight whose tiny
        // gradient changes sign moves the other way under Adam's normalised step, a few lr; there are few of them)
        double relativeL2 = Math.Sqrt(ranks[0].Weights.Zip(referenceWeights, (a, r) => (double)(a - r) * (a - r)).Sum() / referenceWeights.Sum(r => (double)r * r));
        output.WriteLine($"weights: relative L2 distance {relativeL2:0.0e+0}");
        Assert.True(bf16 ? relativeL2 < 1e-2 : weightDifference < 1e-5, $"weights differ by {weightDifference:0.0e+0} at most, {relativeL2:0.0e+0} relative L2");
        Assert.True(reference[^1].Loss < reference[0].Loss - 0.5, "the tiny model must learn for the comparison to mean something");
        Assert.Equal(referenceStateBytes, ranks[0].StateBytes + ranks[1].StateBytes);
        Assert.Equal(referenceFileBytes, ranks[0].FileBytes + ranks[1].FileBytes); // the NVMe swap files: each rank's share only
        Assert.True(Math.Abs(ranks[0].StateBytes - referenceStateBytes / 2) <= 12 * 4096, "each rank holds half the states, give or take one sub-group");
    }

    [Theory]
    [InlineData(2, 2)]
    [InlineData(2, 1)]
    [InlineData(1, 2)]
    public void SavedStatesResumeBitIdenticallyOnAsManyRanksAndRepartitionOnAnotherCount(int savingRanks, int resumingRanks)
    {
        using var scratch = new ScratchDirectory();
        string saved = Path.Combine(scratch.Path, "optimizer");
        const int half = 6;
        // the saving run: 6 steps, the states saved, 6 more steps
        List<double> continued = OnRanks(savingRanks, scratch.Path, "save", (engine, rank, world) =>
        {
            List<Batch> batches = Batches(2 * half, GlobalBatch, rank: rank, worldSize: world);
            Run(engine, batches.Take(half));
            engine.SaveOptimizerState(saved);
            return Run(engine, batches.Skip(half)).Select(m => m.Loss).ToList();
        });
        Assert.Equal(savingRanks > 1, Directory.Exists(OptimizerStateFile.RankFolder(saved, 1)));
        // a new run from the saved states: fresh models (their weights are rewritten from the masters), the last 6 steps
        List<double> resumed = OnRanks(resumingRanks, scratch.Path, "resume", (engine, rank, world) =>
        {
            engine.LoadOptimizerState(saved);
            engine.RestoreStepCount(half);
            return Run(engine, Batches(2 * half, GlobalBatch, rank: rank, worldSize: world).Skip(half)).Select(m => m.Loss).ToList();
        });
        double difference = MaxRelativeDifference(resumed, continued);
        output.WriteLine($"saved on {savingRanks}, resumed on {resumingRanks}: losses {continued[0]:0.0000} -> {continued[^1]:0.0000}, max relative difference {difference:0.0e+0}");
        if (savingRanks == resumingRanks)
            Assert.Equal(continued, resumed);
        else
            Assert.True(difference < 1e-5, $"resumed losses differ by {difference:0.0e+0} relative");
    }

    /// <summary>Runs <paramref name="body"/> on an engine of each of <paramref name="world"/> ranks (states on NVMe, clipping on); returns rank 0's result.</summary>
    private static T OnRanks<T>(int world, string scratch, string name, Func<TrainingEngine, int, int, T> body)
    {
        TrainingOptions Options(string nvme) => TinyTraining.Options(GlobalBatch / world) with
        {
            AdamW = new() { LearningRate = 3e-3, MaxGradNorm = 0.5 },
            SubGroupElementCount = 4096, OptimizerTier = StateTier.Nvme, NvmeDirectory = nvme,
        };
        string Nvme(int rank) => Directory.CreateDirectory(Path.Combine(scratch, $"{name}-{rank}")).FullName;
        if (world == 1)
        {
            using LlamaModel model = Model();
            using var engine = new TrainingEngine(model, Options(Nvme(0)));
            return body(engine, 0, 1);
        }
        var models = Enumerable.Range(0, world).Select(_ => Model()).ToArray();
        try
        {
            return LoopbackRanks.Run(world, group =>
            {
                using var engine = new TrainingEngine(models[group.Rank], Options(Nvme(group.Rank)) with { DataParallelGroup = group });
                return body(engine, group.Rank, world);
            })[0];
        }
        finally
        {
            foreach (LlamaModel model in models)
                model.Dispose();
        }
    }

    /// <summary>Bytes of the optimizer-state swap files in <paramref name="directory"/> (not the weight file).</summary>
    private static long FileBytes(string directory) => Directory.GetFiles(directory, "finetune-optimizer-states-*").Sum(f => new FileInfo(f).Length);
}
