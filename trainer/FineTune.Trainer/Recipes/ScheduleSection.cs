namespace FineTune.Trainer.Recipes;

/// <summary>schedule: linear warmup, then cosine, linear or no decay down to min_lr_ratio × lr.</summary>
public sealed record ScheduleSection
{
    public required ScheduleType Type { get; init; }
    public required int WarmupSteps { get; init; }
    public required double MinLrRatio { get; init; }

    internal static ScheduleSection From(RecipeValues v) => new()
    {
        Type = v.Choice<ScheduleType>("schedule.type"),
        WarmupSteps = v.Int("schedule.warmup_steps"),
        MinLrRatio = v.Double("schedule.min_lr_ratio"),
    };
}
