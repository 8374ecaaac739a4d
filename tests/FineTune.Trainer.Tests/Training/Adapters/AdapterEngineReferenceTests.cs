using FineTune.Offload.Optimizer;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Tests.Models.Lora;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>
/// The LoRA engine against tests/reference/make_lora_fixtures.py (PEFT's LoRA in plain torch, float64): the PEFT
/// adapter the script wrote, trained through <see cref="AdapterEngine"/> for five AdamW steps (FineTune's CPU AdamW
/// over the adapters and modules_to_save only, the base in the engine's read-only store), gives the script's five
/// training losses (with the dropout masks of each step) and its eval loss after the fifth update, within 1e-5
/// relative, on a resident base and on one streamed from NVMe; and the base it never trains is bit for bit the
/// checkpoint's afterwards.
/// </summary>
public sealed class AdapterEngineReferenceTests
{
    private const double Tolerance = 1e-5;
    private readonly ITestOutputHelper _output;

    public AdapterEngineReferenceTests(ITestOutputHelper output) => _output = output;

    [Theory]
    [InlineData(LoraReferenceData.GqaTied, false)]
    [InlineData(LoraReferenceData.BiasAllLinear, false)]
    [InlineData(LoraReferenceData.BiasAllLinear, true)]
    public void FiveAdamWStepsThroughTheEngineFollowTheReference(string fixture, bool baseOnNvme)
    {
        var reference = LoraReferenceData.For(fixture);
        using var scratch = new TinyTraining.ScratchDirectory();
        using var scope = TensorScope.Enter();
        using LlamaModel model = LlamaModel.Open(reference.BaseFolder, DType.Float32, Device.Cpu);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model, reference.DropoutSeed);
        Batch batch = AdapterTraining.FixtureBatch(reference);
        TrainingOptions options = AdapterTraining.ReferenceOptions(batch.BatchSize, batch.SequenceLength) with
        {
            ParameterTier = baseOnNvme ? ParameterTier.Nvme : ParameterTier.Device,
            ParameterSlots = 2,
            NvmeDirectory = scratch.Path,
        };
        var losses = new List<double>();
        List<float[]> frozenAfter;
        using (var engine = new AdapterEngine(model, adapters, options, BaseWeights.FromFolder(reference.BaseFolder)))
        {
            Assert.Equal(adapters.Parameters.Count + adapters.TrainableBaseParameterNames.Count, engine.Optimizer.Parameters.Count);
            for (int step = 0; step < 5; step++)
                losses.Add(engine.Step(batch).Loss);
            using (TensorScope.Enter())
            using (FineTune.Torch.Torch.NoGrad())
                losses.Add(model.Loss(reference.IdsTensor(), reference.LabelsTensor()).Item<float>());
            frozenAfter = AdapterTraining.FrozenValues(model, adapters);
            if (baseOnNvme)
                Assert.True(engine.BaseCounters.Snapshot().BytesRead > 0, "the base was not streamed");
        }

        double worst = 0;
        for (int k = 0; k < losses.Count; k++)
        {
            double e = Math.Abs(losses[k] / reference.AdamWLosses[k] - 1);
            worst = Math.Max(worst, e);
            _output.WriteLine($"{fixture} (base {(baseOnNvme ? "nvme" : "host")}) loss[{k}] {losses[k]:F7} vs {reference.AdamWLosses[k]:F7} (rel {e:E2})");
        }
        Assert.True(worst < Tolerance, $"AdamW losses differ by up to {worst:E2}");
        using LlamaModel original = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        using LoraAdapters frozen = LoraAdapters.Create(original, adapters.Config, 0);
        List<float[]> before = AdapterTraining.FrozenValues(original, frozen);
        Assert.Equal(before.Count, frozenAfter.Count);
        for (int i = 0; i < before.Count; i++)
            Assert.Equal(before[i], frozenAfter[i]);
    }
}
