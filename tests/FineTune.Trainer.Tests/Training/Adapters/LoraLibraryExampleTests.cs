using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Adapters;
using Xunit;

namespace FineTune.Trainer.Tests.Training.Adapters;

/// <summary>
/// README's LoRA library example as a running test: open a base folder without reading it, make adapters, train
/// them through <see cref="AdapterEngine"/> with the base streamed from NVMe, save the PEFT folder; the loss falls,
/// and the saved adapter over the base loaded afresh gives the loss the engine's model gives.
/// </summary>
public sealed class LoraLibraryExampleTests
{
    [Fact]
    public void TrainLoraAdaptersOverAStreamedBaseInYourOwnLoop()
    {
        using var scratch = new TinyTraining.ScratchDirectory();
        string baseFolder = Path.Combine(scratch.Path, "base"), adapterFolder = Path.Combine(scratch.Path, "my-lora");
        using (TensorScope.Enter())
        using (LlamaModel created = TinyTraining.Model())
            LlamaExporter.Export(created, baseFolder); // stands for a downloaded HF folder
        List<Batch> myBatches = TinyTraining.Batches(30, batchSize: 2);
        Batch held = TinyTraining.Batches(31, batchSize: 2)[^1];
        using var scope = TensorScope.Enter();

        // --- the example ---
        using LlamaModel model = LlamaModel.Open(baseFolder, DType.Float32, Device.Cpu);   // reads no weights yet
        using LoraAdapters adapters = LoraAdapters.Create(model, new LoraConfig { Rank = 8, Alpha = 16, Dropout = 0.05, Trainable = ["norm"] }, seed: 1);
        var options = new TrainingOptions
        {
            MicroBatchSize = 2, SequenceLength = TinyTraining.SequenceLength, Precision = PrecisionMode.Float32,
            AdamW = new() { LearningRate = 1e-2, MaxGradNorm = 1.0 },
            ParameterTier = ParameterTier.Nvme, NvmeDirectory = scratch.Path,   // the frozen base streams from NVMe
        };
        var losses = new List<double>();
        double engineLoss;
        using (var engine = new AdapterEngine(model, adapters, options, BaseWeights.FromFolder(baseFolder)))
        {
            foreach (Batch batch in myBatches)
                losses.Add(engine.Step(batch).Loss);
            engine.SaveAdapter(adapterFolder, baseModelNameOrPath: baseFolder);   // PEFT: adapter_config.json + adapter_model.safetensors
            engineLoss = HeldOutLoss(model, held);
        }
        // --- end of the example ---

        Assert.True(losses.Skip(25).Average() < losses.Take(5).Average() - 0.1, $"loss {losses[0]:0.000} -> {losses[^1]:0.000}");
        using LlamaModel reloaded = LlamaModel.Load(baseFolder, DType.Float32, Device.Cpu);
        using LoraAdapters saved = PeftAdapterReader.Load(adapterFolder, reloaded);
        saved.AttachTo(reloaded);
        Assert.Equal(engineLoss, HeldOutLoss(reloaded, held), 6);
    }

    private static double HeldOutLoss(LlamaModel model, Batch batch)
    {
        using var scope = TensorScope.Enter();
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        Tensor ids = FineTune.Torch.Torch.FromArray(batch.InputIds, [batch.BatchSize, batch.SequenceLength]);
        Tensor targets = FineTune.Torch.Torch.FromArray(batch.Labels, [batch.BatchSize, batch.SequenceLength]);
        return CausalLmLoss.FromTargets(model.Forward(ids), targets).Item<float>();
    }
}
