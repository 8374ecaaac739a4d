using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>
/// What the LoRA engine holds and what it changes: its pool is its plan's, class by class, with no gradient
/// accumulators, write-back or master copies for the base; the optimizer sees exactly the adapters and the trainable
/// extras; the frozen base's views require no grad and its weights never change, while an extra (here the
/// embedding, whose backward then runs) does; Dispose gives the model tensors of its own (base plus trained extras);
/// and a host budget the plan exceeds is refused with one sentence before anything is allocated.
/// </summary>
public sealed class AdapterEngineTests
{
    private static readonly LoraConfig s_lora = new() { Rank = 4, Alpha = 8, Trainable = [LoraTrainableModules.Embedding, LoraTrainableModules.FinalNorm] };

    [Theory]
    [InlineData(false, StateTier.Host)]
    [InlineData(true, StateTier.Host)]
    [InlineData(true, StateTier.Nvme)]
    public void PoolIsThePlanAndOnlyAdaptersAndExtrasTrain(bool baseOnNvme, StateTier states)
    {
        using var scratch = new TinyTraining.ScratchDirectory();
        using var scope = TensorScope.Enter();
        using LlamaModel model = TinyTraining.Model(DType.BFloat16);
        Dictionary<string, float[]> before = model.Parameters.ToDictionary(p => p.Name, p => p.Tensor.To(DType.Float32).ToArray<float>());
        using LoraAdapters adapters = LoraAdapters.Create(model, s_lora, seed: 2);
        TrainingOptions options = TinyTraining.Options() with
        {
            Precision = PrecisionMode.BFloat16,
            AdamW = new() { LearningRate = 1e-2 },
            ParameterTier = baseOnNvme ? ParameterTier.Nvme : ParameterTier.Device,
            OptimizerTier = states,
            NvmeDirectory = scratch.Path,
        };
        using (var engine = new AdapterEngine(model, adapters, options))
        {
            foreach (BufferClass c in engine.Plan.Pool.Classes)
                Assert.Equal(c.ReservedByteCount, engine.ReservedByteCountOf(c.Kind));
            Assert.Equal(engine.Plan.PoolByteCount, engine.PoolReservedByteCount);
            foreach (BufferKind none in new[] { BufferKind.GradientAccumulators, BufferKind.WeightWriteBack })
                Assert.Equal(0, engine.ReservedByteCountOf(none));
            string[] trained = [.. adapters.Parameters.Select(p => p.Name), LlamaTensorNames.Embedding, LlamaTensorNames.FinalNorm];
            Assert.Equal(trained, engine.Optimizer.Parameters.Select(p => p.Name));
            Assert.Equal(engine.Plan.TrainedElementCount, engine.Optimizer.SubGroups.Sum(g => g.ElementCount));

            NamedParameter frozen = model.Layers[1].Parameters[0];
            using (StageWeights weights = model.UseWeights(frozen))
                Assert.False(weights[frozen].RequiresGrad, $"{frozen.Name} is frozen");
            foreach (var batch in TinyTraining.Batches(3, batchSize: 2))
                engine.Step(batch);
        }
        Assert.True(model.IsResident, "Dispose gives the model its weights back");
        foreach (NamedParameter p in model.Parameters)
        {
            bool changed = !p.Tensor.To(DType.Float32).ToArray<float>().SequenceEqual(before[p.Name]);
            Assert.True(changed == (p.Name == LlamaTensorNames.Embedding || p.Name == LlamaTensorNames.FinalNorm), $"{p.Name} changed: {changed}");
        }
    }

    [Fact]
    public void HostBudgetBelowThePlanIsRefusedBeforeAnythingIsAllocated()
    {
        using var scope = TensorScope.Enter();
        using LlamaModel model = TinyTraining.Model();
        using LoraAdapters adapters = LoraAdapters.Create(model, new LoraConfig { Rank = 4 }, seed: 2);
        var error = Assert.Throws<UserErrorException>(() => new AdapterEngine(model, adapters, TinyTraining.Options() with { HostBudgetByteCount = 4096 }));
        Assert.StartsWith("LoRA training needs ", error.Message);
        Assert.Contains("but host_gb allows 0 GiB; raise host_gb, put the base (offload.params) or activations on NVMe, or lower the rank.", error.Message);
        Assert.True(model.IsResident, "a refused engine leaves the model as it was");
    }
}
