namespace FineTune.Trainer.Recipes;

/// <summary>training.recompute: recompute decoder layers in backward, keep their graphs (in memory, or with their saved tensors on NVMe), or let the plan choose per layer.</summary>
public enum RecomputeMode
{
    Auto,
    Always,
    Never,
    Spill,
}
