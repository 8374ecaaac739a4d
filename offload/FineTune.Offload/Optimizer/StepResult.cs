namespace FineTune.Offload.Optimizer;

/// <summary>What one <see cref="PartitionedOptimizer.Step"/> did.</summary>
/// <param name="Skipped">True when a gradient was NaN or infinite: nothing changed (dynamic loss scaling lowers the scale).</param>
/// <param name="GradientNorm">Global L2 norm of the unscaled gradients (NaN or infinity when skipped).</param>
/// <param name="ClipFactor">Factor the gradients were multiplied by for clipping (1 when not clipped).</param>
/// <param name="StepNumber">Optimizer steps taken so far, this one included (unchanged when skipped).</param>
public readonly record struct StepResult(bool Skipped, double GradientNorm, double ClipFactor, long StepNumber);
