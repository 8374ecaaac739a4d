namespace FineTune.Trainer.Recipes;

/// <summary>training.recompute: recompute decoder layers in backward, keep their graphs, or let the plan choose per layer.</summary>
public enum RecomputeMode
{
    Auto,
    Always,
    Never,
}
