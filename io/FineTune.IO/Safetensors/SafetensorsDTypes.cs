namespace FineTune.IO.Safetensors;

/// <summary>Byte sizes and header spellings of <see cref="SafetensorsDType"/> (reference: tensor.rs `Dtype::size`).</summary>
public static class SafetensorsDTypes
{
    /// <summary>Bytes per element: 1 for BOOL/U8/I8/F8_*, 2 for I16/U16/F16/BF16, 4 for I32/U32/F32, 8 for F64/I64/U64.</summary>
    public static int ElementByteCount(this SafetensorsDType dtype) => dtype switch
    {
        SafetensorsDType.BOOL or SafetensorsDType.U8 or SafetensorsDType.I8 or SafetensorsDType.F8_E5M2 or SafetensorsDType.F8_E4M3 => 1,
        SafetensorsDType.I16 or SafetensorsDType.U16 or SafetensorsDType.F16 or SafetensorsDType.BF16 => 2,
        SafetensorsDType.I32 or SafetensorsDType.U32 or SafetensorsDType.F32 => 4,
        SafetensorsDType.F64 or SafetensorsDType.I64 or SafetensorsDType.U64 => 8,
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype."),
    };

    /// <summary>The header spelling ("F32", "BF16", "F8_E4M3", ...), identical to the enum member's name.</summary>
    public static string HeaderName(this SafetensorsDType dtype) =>
        Enum.IsDefined(dtype) ? dtype.ToString() : throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown safetensors dtype.");

    /// <summary>Parses a header spelling exactly (case-sensitive, as the reference reader); false for anything else.</summary>
    public static bool TryParse(string text, out SafetensorsDType dtype)
    {
        foreach (SafetensorsDType candidate in Enum.GetValues<SafetensorsDType>())
        {
            if (string.Equals(candidate.ToString(), text, StringComparison.Ordinal))
            {
                dtype = candidate;
                return true;
            }
        }
        dtype = default;
        return false;
    }

    /// <summary>prod(shape) x element size, or null when it overflows a long (a hostile header).</summary>
    public static long? TryComputeByteCount(SafetensorsDType dtype, IReadOnlyList<long> shape)
    {
        try
        {
            long elementCount = 1;
            foreach (long dimension in shape)
            {
                if (dimension < 0)
                    return null;
                elementCount = checked(elementCount * dimension);
            }
            return checked(elementCount * dtype.ElementByteCount());
        }
        catch (OverflowException)
        {
            return null;
        }
    }
}
