using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>The floating-point dtypes a checkpoint may hold on disk, and their libtorch and config.json spellings.</summary>
public static class CheckpointDTypes
{
    /// <summary>The libtorch dtype of a safetensors dtype, or null for one FineTune does not load as weights.</summary>
    public static DType? ToTorch(SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.F32 => DType.Float32,
        SafetensorsDType.BF16 => DType.BFloat16,
        SafetensorsDType.F16 => DType.Float16,
        SafetensorsDType.F64 => DType.Float64,
        _ => null,
    };

    public static SafetensorsDType ToSafetensors(DType dtype) => dtype switch
    {
        DType.Float32 => SafetensorsDType.F32,
        DType.BFloat16 => SafetensorsDType.BF16,
        DType.Float16 => SafetensorsDType.F16,
        DType.Float64 => SafetensorsDType.F64,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "not a weight dtype"),
    };

    /// <summary>Parses "bf16", "bfloat16", "f16", "fp16", "float16", "f32", "fp32", "float32" (the CLI's --dtype).</summary>
    public static DType Parse(string text, string optionName) => text.Trim().ToLowerInvariant() switch
    {
        "bf16" or "bfloat16" => DType.BFloat16,
        "f16" or "fp16" or "float16" or "half" => DType.Float16,
        "f32" or "fp32" or "float32" or "float" => DType.Float32,
        _ => throw new UserErrorException($"{optionName} \"{text}\" is not a weight dtype; use bf16, f16 or f32."),
    };
}
