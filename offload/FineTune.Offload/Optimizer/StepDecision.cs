using FineTune.Offload.Adam;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// What a step will do, decided from the global norm before any sub-group changes: skipped (non-finite gradients),
/// or the AdamW constants with the unscale-and-clip factor folded in. Made by <see cref="PartitionedOptimizer.Decide"/>
/// and carried out by <see cref="PartitionedOptimizer.ApplyAsync"/>, possibly later (under the next forward).
/// </summary>
public readonly record struct StepDecision(StepResult Result, AdamWStepScalars Scalars);
