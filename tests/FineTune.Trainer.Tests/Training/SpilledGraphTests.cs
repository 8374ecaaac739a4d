using FineTune.IO;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Runs;
using FineTune.Trainer.Training;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Graphs with their saved tensors on NVMe: layers that keep their graph while its saved tensors go to the drive and
/// come back before backward give the losses, norms and weights of graphs kept in memory bit for bit (and so of the
/// recomputing engine), alone or between kept and recomputed layers, in fp32 and bf16; the saved tensors really
/// travel (activation bytes written and read back, beyond the recomputing engine's checkpoints); NVMe weights and a
/// missing nvme_dir refuse them.
/// </summary>
public sealed class SpilledGraphTests
{
    // big enough that the layer's tensors are captured: (16 x 32 tokens) x 128 fp32 = 256 KiB
    private static LlamaModel Wider(DType dtype) => LlamaModel.Create(Config(tied: true) with { HiddenSize = 128, IntermediateSize = 256, HeadDim = 32 }, 7, dtype, Device.Cpu);

    [Theory]
    [InlineData(0, -1, false)]
    [InlineData(1, 1, false)]
    [InlineData(0, -1, true)]
    public void SpilledGraphsTrainAsGraphsKeptInMemory(int kept, int spilled, bool bf16)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(4, 16);
        (List<StepMetrics> Metrics, float[] Weights, string Location) Train(int keptLayers, int spilledLayers)
        {
            using LlamaModel model = Wider(bf16 ? DType.BFloat16 : DType.Float32);
            using var engine = new TrainingEngine(model, Options(16) with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
                OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1, NvmeDirectory = scratch.Path, OverlapOptimizerWithBackward = true,
                KeptLayers = keptLayers, SpilledLayers = spilledLayers,
            });
            List<StepMetrics> metrics = batches.Select(b => engine.Step([b])).ToList();
            return (metrics, Weights(model), engine.ActivationLocation);
        }
        var (inMemory, inMemoryWeights, _) = Train(-1, 0);
        var (recomputed, _, _) = Train(0, 0);
        var (run, weights, location) = Train(kept, spilled);
        Assert.Equal(inMemory.Select(m => m.Loss), run.Select(m => m.Loss));
        Assert.Equal(inMemory.Select(m => m.GradientNorm), run.Select(m => m.GradientNorm));
        Assert.Equal(inMemoryWeights, weights);
        Assert.Equal(recomputed.Select(m => m.Loss), run.Select(m => m.Loss));
        Assert.Contains("saved tensors on nvme", location);
        // the graphs' saved tensors went to the drive and came back: more than one layer input each
        int spilledCount = spilled < 0 ? 3 - kept : spilled;
        long inputBytes = 16L * SequenceLength * 128 * (bf16 ? 2 : 4);
        long written = run[^1].Traffic.ActivationWriteBytes, read = run[^1].Traffic.ActivationReadBytes;
        Assert.True(written > spilledCount * 3 * inputBytes, $"{written} bytes written for {spilledCount} layers");
        Assert.InRange(read, 1, written); // what a prefetch asked for before its write finished never left
        Assert.True(run[^1].Loss < run[0].Loss);
    }

    [Fact]
    public void SpilledLayersNeedResidentWeightsAndAnNvmeDirectory()
    {
        using var scratch = new ScratchDirectory();
        using LlamaModel model = Wider(DType.Float32);
        var weights = Assert.Throws<ArgumentException>(() => new TrainingEngine(model, Options() with
        {
            OptimizerTier = StateTier.Nvme, ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path, SpilledLayers = -1,
        }));
        Assert.Contains("resident weights", weights.Message);
        var directory = Assert.Throws<ArgumentException>(() => new TrainingEngine(model, Options() with { SpilledLayers = -1 }));
        Assert.Contains("nvme_dir", directory.Message);
    }

    [Fact]
    public void ARecipeRunWithSpillTrainsAsOneThatKeepsEveryGraphAndThePlanSaysSo()
    {
        using var tiny = new TinyRunRecipe();
        string[] wider = ["model.config.hidden_size=128", "model.config.intermediate_size=256", "training.batch_size=16", "training.max_steps=3",
            "offload.host_gb=null", "offload.nvme_gb=null"];
        RunPlan spill = RunPlan.Create(tiny.Load([.. wider, "training.recompute=spill"]), baselineByteCount: 0);
        Assert.Equal((0, 2), (spill.KeptLayers, spill.SpilledLayers));
        Assert.Equal(0, spill.RecomputeSeconds);
        Assert.True(spill.NvmeWriteBytesPerStep > RunPlan.Create(tiny.Load([.. wider, "training.recompute=always"]), baselineByteCount: 0).NvmeWriteBytesPerStep);
        RunResult Run(string mode) => new TrainingRun(tiny.Load([.. wider, $"training.recompute={mode}", $"output_dir={tiny.OutputDirectory}/{mode}",
            $"offload.nvme_dir={tiny.OutputDirectory}/{mode}/swap"]),
            new RunProgress(TextWriter.Null, null, 1)).Execute(CancellationToken.None);
        RunResult spilled = Run("spill"), kept = Run("never");
        Assert.Equal(kept.LossCurve, spilled.LossCurve);
        Assert.NotEmpty(spilled.LossCurve);
        // without nvme_dir there is nowhere to spill: one sentence naming the key
        var e = Assert.Throws<UserErrorException>(() => RunPlan.Create(tiny.Load([.. wider, "training.recompute=spill", "offload.nvme_dir=null",
            "offload.optimizer_states=host", "offload.activations=host"]), baselineByteCount: 0));
        Assert.Contains("offload.nvme_dir", e.Message);
    }

    [Fact]
    public void SavedTensorsThatOverrunTheSpillFileStayInMemoryAndTheStepSaysSo()
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(2, 16);
        List<StepMetrics> Train(int kept, int spilled, long? fileBytes)
        {
            using LlamaModel model = Wider(DType.Float32);
            using var engine = new TrainingEngine(model, Options(16) with
            {
                OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1, NvmeDirectory = scratch.Path, OverlapOptimizerWithBackward = true,
                KeptLayers = kept, SpilledLayers = spilled, SpillFileByteCount = fileBytes,
            });
            return batches.Select(b => engine.Step([b])).ToList();
        }
        List<StepMetrics> inMemory = Train(-1, 0, null), overrun = Train(0, -1, 1L << 20); // room for a few regions only
        Assert.Equal(inMemory.Select(m => m.Loss), overrun.Select(m => m.Loss));
        Assert.All(overrun, m => Assert.True(m.UnspilledActivationByteCount > 0));
        Assert.All(overrun, m => Assert.InRange(m.Traffic.ActivationWriteBytes, 1, 1L << 20));
        Assert.All(Train(0, -1, null), m => Assert.Equal(0, m.UnspilledActivationByteCount));
    }
}
