namespace FineTune.Trainer.Recipes;

/// <summary>checkpoint: how often to save, how many to keep and where.</summary>
public sealed record CheckpointSection
{
    /// <summary>Null: no step-based saves (the end of the run and Ctrl-C still save).</summary>
    public int? EverySteps { get; init; }
    /// <summary>Null: no time-based saves.</summary>
    public double? EveryMinutes { get; init; }
    public required int KeepLast { get; init; }
    /// <summary>Resolved: checkpoint.dir, or &lt;output_dir&gt;/checkpoints when null.</summary>
    public required string Dir { get; init; }

    internal static CheckpointSection From(RecipeValues v) => new()
    {
        EverySteps = v.NullableInt("checkpoint.every_steps"),
        EveryMinutes = v.NullableDouble("checkpoint.every_minutes"),
        KeepLast = v.Int("checkpoint.keep_last"),
        Dir = v.String("checkpoint.dir") ?? Path.Combine(v.String("output_dir")!, "checkpoints"),
    };
}
