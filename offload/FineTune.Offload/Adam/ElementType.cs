namespace FineTune.Offload.Adam;

/// <summary>Element type of a host buffer the optimizer reads gradients from or writes weights to.</summary>
public enum ElementType
{
    Float32,
    BFloat16,
    Float16,
}

/// <summary>Sizes of <see cref="ElementType"/> values.</summary>
public static class ElementTypeExtensions
{
    public static int ByteCount(this ElementType type) => type switch
    {
        ElementType.Float32 => 4,
        ElementType.BFloat16 => 2,
        ElementType.Float16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>The libtorch dtype of the same elements.</summary>
    public static FineTune.Torch.DType ToDType(this ElementType type) => type switch
    {
        ElementType.Float32 => FineTune.Torch.DType.Float32,
        ElementType.BFloat16 => FineTune.Torch.DType.BFloat16,
        ElementType.Float16 => FineTune.Torch.DType.Float16,
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    /// <summary>The element type of a libtorch dtype the optimizer can train (fp32, bf16, f16).</summary>
    public static ElementType FromDType(FineTune.Torch.DType dtype) => dtype switch
    {
        FineTune.Torch.DType.Float32 => ElementType.Float32,
        FineTune.Torch.DType.BFloat16 => ElementType.BFloat16,
        FineTune.Torch.DType.Float16 => ElementType.Float16,
        _ => throw new ArgumentException($"parameters of dtype {dtype} cannot be trained; use float32, bfloat16 or float16."),
    };
}
