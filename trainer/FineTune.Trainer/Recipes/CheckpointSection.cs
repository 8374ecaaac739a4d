namespace FineTune.Trainer.Recipes;

/// <summary>checkpoint: how often to save, how many to keep and where.</summary>
public sealed record CheckpointSection
{
    /// <summary>Null: only at the end of the run.</summary>
    public int? EverySteps { get; init; }
    public required int KeepLast { get; init; }
    /// <summary>Resolved: checkpoint.dir, or &lt;output_dir&gt;/checkpoints when null.</summary>
    public required string Dir { get; init; }

    internal static CheckpointSection From(RecipeValues v) => new()
    {
        EverySteps = v.NullableInt("checkpoint.every_steps"),
        KeepLast = v.Int("checkpoint.keep_last"),
        Dir = v.String("checkpoint.dir") ?? Path.Combine(v.String("output_dir")!, "checkpoints"),
    };
}
