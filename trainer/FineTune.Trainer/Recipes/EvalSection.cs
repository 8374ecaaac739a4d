namespace FineTune.Trainer.Recipes;

/// <summary>eval: periodic evaluation on a held-out fraction of the dataset or on a separate file.</summary>
public sealed record EvalSection
{
    /// <summary>Null: no evaluation.</summary>
    public int? EverySteps { get; init; }
    public required double Fraction { get; init; }
    public string? Path { get; init; }

    /// <summary>Measure the synthetic task's exact-answer accuracy before and after training.</summary>
    public required bool TaskAccuracy { get; init; }

    internal static EvalSection From(RecipeValues v) => new()
    {
        TaskAccuracy = v.Bool("eval.task_accuracy"),
        EverySteps = v.NullableInt("eval.every_steps"),
        Fraction = v.Double("eval.fraction"),
        Path = v.String("eval.path"),
    };
}
