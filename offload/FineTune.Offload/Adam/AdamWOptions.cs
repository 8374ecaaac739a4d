namespace FineTune.Offload.Adam;

/// <summary>
/// AdamW hyper-parameters with PyTorch's defaults (torch.optim.AdamW: lr 1e-3, betas (0.9, 0.999), eps 1e-8,
/// weight_decay 0.01). The learning rate here is the initial one; the optimizer takes a per-step value.
/// </summary>
public sealed record AdamWOptions
{
    public double LearningRate { get; init; } = 1e-3;
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    public double Epsilon { get; init; } = 1e-8;
    public double WeightDecay { get; init; } = 0.01;

    /// <summary>Clip the global gradient L2 norm to this value; zero or less disables clipping.</summary>
    public double MaxGradNorm { get; init; }
}
