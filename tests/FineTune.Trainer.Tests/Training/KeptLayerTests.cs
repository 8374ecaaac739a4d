using FineTune.IO;
using FineTune.Offload.Optimizer;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Runs;
using Xunit;
using static FineTune.Trainer.Tests.Training.TinyTraining;

namespace FineTune.Trainer.Tests.Training;

/// <summary>
/// Recompute as a choice: decoder layers that keep their autograd graph from forward to backward give the losses,
/// norms and weights of the recomputing engine bit for bit (the same ops on the same inputs), in fp32 and bf16, with
/// states and saved inputs on NVMe, with clipping under the deferred update; they save no input (less activation
/// traffic); NVMe weights refuse them; and the run's plan keeps what host_gb has room for.
/// </summary>
public sealed class KeptLayerTests
{
    [Theory]
    [InlineData(2, false, false)]
    [InlineData(-1, false, false)]
    [InlineData(1, true, false)]
    [InlineData(-1, true, true)]
    public void KeptLayersTrainAsTheRecomputingEngine(int kept, bool bf16, bool clip)
    {
        using var scratch = new ScratchDirectory();
        List<Batch> batches = Batches(6, 2);
        (List<StepMetrics> Metrics, float[] Weights) Train(int keptLayers)
        {
            using LlamaModel model = Model(tied: true, dtype: bf16 ? FineTune.Torch.DType.BFloat16 : FineTune.Torch.DType.Float32);
            using var engine = new TrainingEngine(model, Options() with
            {
                Precision = bf16 ? PrecisionMode.BFloat16 : PrecisionMode.Float32,
                AdamW = new() { LearningRate = 3e-3, MaxGradNorm = clip ? 0.05 : 0 },
                OptimizerTier = StateTier.Nvme, NvmeActivationLayers = -1, NvmeDirectory = scratch.Path, KeptLayers = keptLayers,
            });
            Assert.Equal(keptLayers < 0 ? model.Layers.Count : keptLayers, engine.Plan.KeptLayers);
            List<StepMetrics> metrics = batches.Select(b => engine.Step([b])).ToList();
            return (metrics, Weights(model));
        }
        var (recomputed, recomputedWeights) = Train(0);
        var (keptRun, keptWeights) = Train(kept);
        Assert.Equal(recomputed.Select(m => m.Loss), keptRun.Select(m => m.Loss));
        Assert.Equal(recomputed.Select(m => m.GradientNorm), keptRun.Select(m => m.GradientNorm));
        Assert.Equal(recomputedWeights, keptWeights);
        // a kept layer saves no input: its checkpoint's NVMe bytes are gone from the step's traffic
        Assert.True(keptRun[^1].Traffic.ActivationWriteBytes < recomputed[^1].Traffic.ActivationWriteBytes,
            $"{keptRun[^1].Traffic.ActivationWriteBytes} vs {recomputed[^1].Traffic.ActivationWriteBytes}");
        Assert.True(recomputed[^1].Loss < recomputed[0].Loss);
    }

    [Fact]
    public void NvmeWeightsRefuseKeptLayers()
    {
        using var scratch = new ScratchDirectory();
        using LlamaModel model = Model(tied: false);
        var e = Assert.Throws<ArgumentException>(() => new TrainingEngine(model, Options() with
        {
            OptimizerTier = StateTier.Nvme, ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path, KeptLayers = 1,
        }));
        Assert.Contains("resident weights", e.Message);
    }

    [Fact]
    public void ThePlanKeepsWhatTheHostBudgetHasRoomFor()
    {
        using var tiny = new TinyRunRecipe();
        RunPlan Plan(params string[] overrides) => RunPlan.Create(tiny.Load(["model.config.num_hidden_layers=8", .. overrides]), baselineByteCount: 0);
        RunPlan free = Plan("offload.host_gb=null");
        Assert.Equal(8, free.KeptLayers); // no budget: every layer, as eager
        Assert.Equal(0, Plan("offload.host_gb=null", "training.recompute=always").KeptLayers);
        RunPlan recomputing = Plan("offload.host_gb=null", "training.recompute=always");
        Assert.True(free.FlopsPerStep < recomputing.FlopsPerStep && free.RecomputeSeconds == 0 && recomputing.RecomputeSeconds > 0);
        Assert.Equal(recomputing.WorkingByteCount + 8 * free.KeptLayerByteCount, free.WorkingByteCount);
        // a budget with room for three kept layers beyond the recomputing plan keeps three (the top ones)
        double gib = recomputing.HostPeakByteCount(0) + 3.5 * recomputing.KeptLayerByteCount;
        RunPlan three = Plan(FormattableString.Invariant($"offload.host_gb={gib / OffloadSection.BytesPerGb:0.000000}"));
        Assert.Equal(3, three.KeptLayers);
        Assert.True(three.HostPeakByteCount(0) <= (long)gib);
        // never past the budget is refused with a sentence, not run over host_gb
        var tight = Assert.Throws<UserErrorException>(() => Plan(FormattableString.Invariant($"offload.host_gb={gib / OffloadSection.BytesPerGb:0.000000}"), "training.recompute=never"));
        Assert.Contains("training.recompute: never keeps all 8 layers", tight.Message);
        // NVMe weights: nothing kept on auto, never is refused with a sentence
        Assert.Equal(0, Plan("offload.host_gb=null", "offload.params=nvme").KeptLayers);
        var e = Assert.Throws<UserErrorException>(() => Plan("offload.host_gb=null", "offload.params=nvme", "training.recompute=never"));
        Assert.Contains("training.recompute", e.Message);
    }
}
