namespace FineTune.Trainer.Recipes;

/// <summary>logging: how often metrics are logged and whether TensorBoard files are written.</summary>
public sealed record LoggingSection
{
    public required int LogEverySteps { get; init; }
    public required bool TensorBoard { get; init; }
    public required double FlushSeconds { get; init; }

    internal static LoggingSection From(RecipeValues v) => new()
    {
        LogEverySteps = v.Int("logging.log_every_steps"),
        TensorBoard = v.Bool("logging.tensorboard"),
        FlushSeconds = v.Double("logging.flush_seconds"),
    };
}
