namespace FineTune.Trainer.Recipes;

/// <summary>training.precision: the compute dtype (master weights and optimizer states are always fp32).</summary>
public enum Precision
{
    Fp32,
    Bf16,
    Fp16,
}
