namespace FineTune.Trainer.Recipes;

/// <summary>optimizer: AdamW hyperparameters (decoupled weight decay, reference: Loshchilov and Hutter 2019).</summary>
public sealed record OptimizerSection
{
    public required double Lr { get; init; }
    public required double Beta1 { get; init; }
    public required double Beta2 { get; init; }
    public required double Eps { get; init; }
    public required double WeightDecay { get; init; }

    internal static OptimizerSection From(RecipeValues v)
    {
        var (beta1, beta2) = v.Pair("optimizer.betas");
        return new OptimizerSection
        {
            Lr = v.Double("optimizer.lr"),
            Beta1 = beta1,
            Beta2 = beta2,
            Eps = v.Double("optimizer.eps"),
            WeightDecay = v.Double("optimizer.weight_decay"),
        };
    }
}
