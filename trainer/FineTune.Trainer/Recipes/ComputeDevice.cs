namespace FineTune.Trainer.Recipes;

/// <summary>training.device: where the forward and backward math runs.</summary>
public enum ComputeDevice
{
    Auto,
    Cpu,
    Cuda,
}
