namespace FineTune.Torch;

/// <summary>
/// Facts about <see cref="DType"/>: element byte counts and the .NET element type that matches each dtype
/// for Span copies. bf16 has no .NET arithmetic type here: its raw bits travel as <see cref="ushort"/>.
/// </summary>
public static class DTypes
{
    public static int ElementByteCount(this DType dtype) => dtype switch
    {
        DType.Float32 => 4,
        DType.Float64 => 8,
        DType.BFloat16 => 2,
        DType.Float16 => 2,
        DType.Int64 => 8,
        DType.Int32 => 4,
        DType.UInt8 => 1,
        DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "unknown dtype"),
    };

    public static bool IsFloatingPoint(this DType dtype) =>
        dtype is DType.Float32 or DType.Float64 or DType.BFloat16 or DType.Float16;

    /// <summary>The dtype whose elements are stored exactly like a <typeparamref name="T"/>.</summary>
    public static DType Of<T>() where T : unmanaged
    {
        if (typeof(T) == typeof(float)) return DType.Float32;
        if (typeof(T) == typeof(double)) return DType.Float64;
        if (typeof(T) == typeof(Half)) return DType.Float16;
        if (typeof(T) == typeof(ushort)) return DType.BFloat16;
        if (typeof(T) == typeof(long)) return DType.Int64;
        if (typeof(T) == typeof(int)) return DType.Int32;
        if (typeof(T) == typeof(byte)) return DType.UInt8;
        if (typeof(T) == typeof(bool)) return DType.Bool;
        throw new NotSupportedException(
            $"{typeof(T).Name} has no tensor dtype; use float, double, Half, ushort (bf16 bits), long, int, byte or bool.");
    }

    /// <summary>Lower-case PyTorch-style name: float32, bfloat16, int64, ...</summary>
    public static string Name(this DType dtype) => dtype switch
    {
        DType.Float32 => "float32",
        DType.Float64 => "float64",
        DType.BFloat16 => "bfloat16",
        DType.Float16 => "float16",
        DType.Int64 => "int64",
        DType.Int32 => "int32",
        DType.UInt8 => "uint8",
        DType.Bool => "bool",
        _ => dtype.ToString(),
    };
}
