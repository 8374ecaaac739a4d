namespace FineTune.Trainer.Training.Gradients;

/// <summary>Where a step's gradients go between backward and the optimizer.</summary>
public enum GradientTier
{
    /// <summary>
    /// The plan decides: consumed when the update can follow backward (one micro-batch, no clipping or loss scaling);
    /// on NVMe when it waits for the norm and the states or weights are on NVMe already (one micro-batch); else host accumulators.
    /// </summary>
    Auto,

    /// <summary>fp32 accumulators for every parameter in the host pool (4 bytes a parameter): accumulation, and an update that needs the global norm first.</summary>
    HostAccumulators,

    /// <summary>No per-parameter memory: each stage's final gradients go straight to the overlapped update and are freed after it (bounded in flight).</summary>
    Consumed,

    /// <summary>
    /// No per-parameter host memory for an update that waits for the global norm (clipping, loss scaling): each stage's
    /// final gradients are written to NVMe as backward makes them and read back by the update under the next forward.
    /// </summary>
    Nvme,
}
