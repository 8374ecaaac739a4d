namespace FineTune.Trainer.Training;

/// <summary>Where the model's low-precision weights live during training (offloaded mode).</summary>
public enum ParameterTier
{
    /// <summary>All resident with the compute (on CPU: in the engine's host pool).</summary>
    Device,

    /// <summary>
    /// On NVMe (<see cref="TrainingOptions.NvmeDirectory"/>); only the stages in use are resident, in
    /// <see cref="TrainingOptions.ParameterSlots"/> pool slots, the next ones prefetched while the current one computes.
    /// </summary>
    Nvme,
}
