using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>The final RMSNorm (model.norm.weight): (B, T, C) -> (B, T, C).</summary>
public sealed class FinalNormLayer : IModelLayer
{
    private readonly double _eps;

    internal FinalNormLayer(NamedParameter weight, double eps)
    {
        Weight = weight;
        _eps = eps;
        Parameters = [weight];
    }

    public NamedParameter Weight { get; }

    public string Name => "norm";

    public IReadOnlyList<NamedParameter> Parameters { get; }

    public Tensor Forward(Tensor input, StageWeights weights)
    {
        using (TensorScope.Enter())
            return RmsNorm.Apply(input, weights[Weight], _eps).MoveToOuterScope();
    }

    public Tensor? Backward(Tensor input, Tensor outputGrad, StageWeights weights) =>
        LayerRecompute.Backward(x => Forward(x, weights), input, outputGrad, inputHasGrad: true);
}
