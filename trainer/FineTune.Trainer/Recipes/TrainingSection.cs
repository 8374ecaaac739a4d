namespace FineTune.Trainer.Recipes;

/// <summary>training: seed, batch geometry, length of the run, precision and compute device.</summary>
public sealed record TrainingSection
{
    public required long Seed { get; init; }
    /// <summary>Sequences per micro-batch.</summary>
    public required int BatchSize { get; init; }
    public required int GradientAccumulationSteps { get; init; }
    /// <summary>Null: run <see cref="Epochs"/> passes.</summary>
    public long? MaxSteps { get; init; }
    public required int Epochs { get; init; }
    public required Precision Precision { get; init; }
    /// <summary>Null: no clipping.</summary>
    public double? ClipGradNorm { get; init; }
    public required ComputeDevice Device { get; init; }
    public required RecomputeMode Recompute { get; init; }

    internal static TrainingSection From(RecipeValues v) => new()
    {
        Seed = v.Long("training.seed"),
        BatchSize = v.Int("training.batch_size"),
        GradientAccumulationSteps = v.Int("training.gradient_accumulation_steps"),
        MaxSteps = v.NullableLong("training.max_steps"),
        Epochs = v.Int("training.epochs"),
        Precision = v.Choice<Precision>("training.precision"),
        ClipGradNorm = v.NullableDouble("training.clip_grad_norm"),
        Device = v.Choice<ComputeDevice>("training.device"),
        Recompute = v.Choice<RecomputeMode>("training.recompute"),
    };
}
