using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// A LoRA training step written out as the engine will run it (IModelLayer's doc comment), for tests until the
/// engine trains adapters: forward stage by stage without a graph keeping each stage's input, the loss and its
/// gradient, then each stage's recompute-backward from the top; only the adapters (and trainable extras) are
/// leaves that require grad, so the frozen base passes gradients through to the inputs and accumulates none.
/// The embedding's backward is skipped when its weight is frozen (nothing there to train).
/// With <c>streamed</c>, every stage's weights are brought in just for its forward and again for its backward
/// (<see cref="LlamaModel.UseWeights"/>; a model from <see cref="LlamaModel.Open"/> reads them from its
/// checkpoint and frees them after), which is how a base streamed from NVMe is used.
/// </summary>
internal static class LoraTrainingLoop
{
    /// <summary>One forward/backward at <paramref name="step"/>: the loss (float32); gradients accumulate into the trained tensors.</summary>
    public static double ForwardBackward(LlamaModel model, LoraAdapters adapters, Tensor ids, Tensor labels, long step, bool streamed = false)
    {
        adapters.DropoutPosition = new LoraDropoutPosition(step, 0);
        using var scope = TensorScope.Enter();
        var inputs = new List<Tensor>();
        Tensor x = ids;
        using (FineTune.Torch.Torch.NoGrad())
        {
            for (int s = 0; s < model.Stages.Count; s++)
            {
                inputs.Add(x);
                using StageWeights weights = Use(model, s, streamed);
                x = model.Stages[s].Forward(x, weights);
            }
        }
        var (loss, grad) = CausalLmLoss.ForwardBackward(x, CausalLmLoss.ShiftLabels(labels));
        bool embeddingTrains = adapters.TrainableBaseParameterNames.Contains(LlamaTensorNames.Embedding);
        Tensor? upstream = grad;
        for (int s = model.Stages.Count - 1; s >= (embeddingTrains ? 0 : 1); s--)
        {
            using StageWeights weights = Use(model, s, streamed);
            upstream = model.Stages[s].Backward(inputs[s], upstream!, weights);
        }
        adapters.DropoutPosition = null;
        return loss.Item<float>();
    }

    /// <summary>The tensors an optimizer updates: every A and B, then the trainable extras (made leaves that require grad).</summary>
    public static Tensor[] TrainedTensors(LlamaModel model, LoraAdapters adapters)
    {
        var extras = model.Parameters.Where(p => adapters.TrainableBaseParameterNames.Contains(p.Name)).ToArray();
        foreach (NamedParameter extra in extras)
            extra.Tensor.RequiresGrad = true;
        return [.. adapters.Parameters.Select(p => p.Tensor), .. extras.Select(p => p.Tensor)];
    }

    /// <summary>Stage <paramref name="stage"/>'s weights from the model's source when streamed, else the resident tensors.</summary>
    private static StageWeights Use(LlamaModel model, int stage, bool streamed) =>
        streamed ? model.Weights.Acquire(stage, 0) : StageWeights.Resident;
}
