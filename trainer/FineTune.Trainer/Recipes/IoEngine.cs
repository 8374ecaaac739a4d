namespace FineTune.Trainer.Recipes;

/// <summary>offload.io_engine: how NVMe reads and writes are issued.</summary>
public enum IoEngine
{
    Auto,
    IoUring,
    Threads,
}
