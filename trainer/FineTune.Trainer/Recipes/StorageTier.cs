namespace FineTune.Trainer.Recipes;

/// <summary>Where a class of training state lives (offload.optimizer_states, activations, params); Auto lets the planner decide.</summary>
public enum StorageTier
{
    Auto,
    Device,
    Host,
    Nvme,
}
