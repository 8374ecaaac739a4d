namespace FineTune.Trainer.Training;

/// <summary>Arithmetic of the forward and backward passes; the optimizer always keeps fp32 master weights.</summary>
public enum PrecisionMode
{
    /// <summary>fp32 weights and compute (the CPU default).</summary>
    Float32,

    /// <summary>bf16 weights and compute, fp32 gradient accumulation and fp32 master weights in the optimizer.</summary>
    BFloat16,

    /// <summary>fp16 weights and compute with dynamic loss scaling (overflowing steps are skipped and counted).</summary>
    Float16,
}
