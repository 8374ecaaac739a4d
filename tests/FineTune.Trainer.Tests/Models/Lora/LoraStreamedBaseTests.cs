using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// LoRA over a base that is streamed (a model from <see cref="LlamaModel.Open"/>: each stage's frozen weights read
/// from the checkpoint for its forward and again for its backward, then freed) trains exactly as over a resident
/// base: 20 AdamW steps with dropout, all-linear adapters and trained norms give bit-identical losses and adapters.
/// The base never changes, so reading it again is reading the same bytes; this is the property the engine's
/// NVMe-streamed base must keep.
/// </summary>
public sealed class LoraStreamedBaseTests
{
    [Fact]
    public void TwentyStepsOverAStreamedBaseEqualTwentyOverAResidentOneBitForBit()
    {
        var reference = LoraReferenceData.For(LoraReferenceData.BiasAllLinear);
        var (residentLosses, residentAdapters) = Train(reference, streamed: false);
        var (streamedLosses, streamedAdapters) = Train(reference, streamed: true);
        Assert.Equal(20, residentLosses.Count);
        Assert.Equal(residentLosses, streamedLosses);
        Assert.True(residentLosses[^1] < residentLosses[0] - 0.5, $"the adapters did not learn: {residentLosses[0]} -> {residentLosses[^1]}");
        Assert.Equal(residentAdapters.Count, streamedAdapters.Count);
        for (int i = 0; i < residentAdapters.Count; i++)
            Assert.Equal(residentAdapters[i], streamedAdapters[i]);
    }

    private static (List<double> Losses, List<float[]> Trained) Train(LoraReferenceData reference, bool streamed)
    {
        using var scope = TensorScope.Enter();
        using LlamaModel model = streamed
            ? LlamaModel.Open(reference.BaseFolder, DType.Float32, Device.Cpu)
            : LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        model.SetRequiresGrad(false);
        using LoraAdapters adapters = PeftAdapterReader.Load(reference.AdapterFolder, model, reference.DropoutSeed);
        adapters.AttachTo(model);
        Tensor[] trained = LoraTrainingLoop.TrainedTensors(model, adapters);
        using var optimizer = new TorchAdamW(trained, learningRate: 1e-2, weightDecay: 0.01);
        Tensor ids = reference.IdsTensor(), labels = reference.LabelsTensor();
        var losses = new List<double>();
        for (int step = 0; step < 20; step++)
        {
            optimizer.ZeroGrad();
            losses.Add(LoraTrainingLoop.ForwardBackward(model, adapters, ids, labels, step, streamed));
            optimizer.Step();
        }
        Assert.Equal(streamed, !model.IsResident);
        return (losses, trained.Select(t => t.ToArray<float>()).ToList());
    }
}
