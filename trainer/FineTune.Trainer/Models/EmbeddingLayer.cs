using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>Token embedding: ids (B, T) int64 -> rows of model.embed_tokens.weight (V, C), giving (B, T, C).</summary>
public sealed class EmbeddingLayer : IModelLayer
{
    internal EmbeddingLayer(NamedParameter weight)
    {
        Weight = weight;
        Parameters = [weight];
    }

    public NamedParameter Weight { get; }

    public string Name => "embedding";

    public IReadOnlyList<NamedParameter> Parameters { get; }

    public Tensor Forward(Tensor input, StageWeights weights) => Embedding(weights[Weight], input);

    /// <summary>Accumulates the embedding's gradient; token ids have none, so this returns null.</summary>
    public Tensor? Backward(Tensor input, Tensor outputGrad, StageWeights weights) =>
        LayerRecompute.Backward(x => Forward(x, weights), input, outputGrad, inputHasGrad: false);
}
