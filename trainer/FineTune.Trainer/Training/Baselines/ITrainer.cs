using FineTune.Trainer.Data;

namespace FineTune.Trainer.Training.Baselines;

/// <summary>What benches and tests drive the same way whichever trainer they compare: one optimizer step per call.</summary>
public interface ITrainer : IDisposable
{
    StepMetrics Step(IReadOnlyList<Batch> microBatches);

    StepMetrics Step(Batch batch) => Step([batch]);

    long StepCount { get; }

    DynamicLossScaler? LossScaler { get; }

    /// <summary>True when sub-groups are updated during backward (the engine without clipping or loss scaling).</summary>
    bool OverlapsOptimizer { get; }

    /// <summary>Where optimizer states, activation checkpoints and weights live, for bench output.</summary>
    (string States, string Activations, string Weights) Locations { get; }

    /// <summary>Host bytes reserved in pools (0 for the baseline, whose tensors come from libtorch's allocator).</summary>
    long PoolReservedByteCount { get; }

    /// <summary>How the optimizer runs relative to backward.</summary>
    string UpdateStrategy { get; }

    /// <summary>Waits until the last step's update is in place (an update deferred under the next forward).</summary>
    void Settle() { }
}
