using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The LM head: (B, T, C) -> logits (B, T, V) = x W^T with W = lm_head.weight, or the embedding matrix when
/// tie_word_embeddings (then this layer owns no parameter and its gradient accumulates into the embedding's).
/// </summary>
public sealed class LmHeadLayer : IModelLayer
{
    internal LmHeadLayer(NamedParameter weight, bool tied)
    {
        Weight = weight;
        IsTied = tied;
        Parameters = tied ? [] : [weight];
    }

    /// <summary>lm_head.weight, or model.embed_tokens.weight when <see cref="IsTied"/>.</summary>
    public NamedParameter Weight { get; }

    public bool IsTied { get; }

    public string Name => "lm_head";

    public IReadOnlyList<NamedParameter> Parameters { get; }

    public Tensor Forward(Tensor input, StageWeights weights) => Linear(input, weights[Weight]);

    public Tensor? Backward(Tensor input, Tensor outputGrad, StageWeights weights) =>
        LayerRecompute.Backward(x => Forward(x, weights), input, outputGrad, inputHasGrad: true);
}
