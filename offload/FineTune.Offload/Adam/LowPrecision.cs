using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FineTune.Offload.Adam;

/// <summary>
/// float to bf16 / f16 rounding (round to nearest, ties to even), scalar and vectorized, with the same bits from
/// every path so chunking never changes a result. Works on registers: no temporaries in memory.
/// reference: bf16: the rounding used by PyTorch's c10::BFloat16 (round_to_nearest_even), NaN -> 0x7FC0.
/// reference: f16: F. Giesen, "float_to_half_fast3_rtne" (public domain), the algorithm behind
/// System.Numerics.Tensors' ConvertToHalf; matches the (Half) cast for every non-NaN input.
/// </summary>
internal static class LowPrecision
{
    private const uint BFloat16NaN = 0x7FC0;
    private const uint Float32Infinity = 0x7F800000;
    private const uint Float16MaxAsFloat32 = (127 + 16) << 23; // 65536: at or above rounds to infinity
    private const uint DenormalMagic = ((127 - 15) + (23 - 10) + 1) << 23; // 0.5f
    private const uint Float16MinNormalAsFloat32 = 113 << 23;
    private const uint RebiasAndRound = unchecked((uint)((15 - 127) << 23) + 0xFFF);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
            return (ushort)BFloat16NaN;
        return (ushort)((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float FromBFloat16(ushort bits) => BitConverter.UInt32BitsToSingle((uint)bits << 16);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort ToFloat16(float value) => BitConverter.HalfToUInt16Bits((Half)value);

    /// <summary>Element <paramref name="index"/> of an fp32, bf16 or f16 array at <paramref name="elements"/>, widened to float.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static unsafe float ToFloat32(ElementType type, nint elements, long index) => type switch
    {
        ElementType.Float32 => ((float*)elements)[index],
        ElementType.BFloat16 => FromBFloat16(((ushort*)elements)[index]),
        _ => (float)BitConverter.UInt16BitsToHalf(((ushort*)elements)[index]),
    };

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> ToBFloat16(Vector512<float> value)
    {
        Vector512<uint> bits = value.AsUInt32();
        Vector512<uint> rounded = (bits + Vector512.Create(0x7FFFu) + ((bits >> 16) & Vector512<uint>.One)) >> 16;
        return Vector512.ConditionalSelect(Vector512.Equals(value, value).AsUInt32(), rounded, Vector512.Create(BFloat16NaN));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> ToBFloat16(Vector256<float> value)
    {
        Vector256<uint> bits = value.AsUInt32();
        Vector256<uint> rounded = (bits + Vector256.Create(0x7FFFu) + ((bits >> 16) & Vector256<uint>.One)) >> 16;
        return Vector256.ConditionalSelect(Vector256.Equals(value, value).AsUInt32(), rounded, Vector256.Create(BFloat16NaN));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<uint> ToFloat16(Vector512<float> value)
    {
        Vector512<uint> x = value.AsUInt32();
        Vector512<uint> sign = x & Vector512.Create(0x80000000u);
        x ^= sign;
        // Overflow and NaN: infinity, or a quiet NaN.
        Vector512<uint> special = Vector512.ConditionalSelect(Vector512.GreaterThan(x, Vector512.Create(Float32Infinity)),
            Vector512.Create(0x7E00u), Vector512.Create(0x7C00u));
        // Subnormal results: adding 0.5f aligns the 10 mantissa bits at the bottom, rounding to nearest even.
        Vector512<uint> subnormal = (x.AsSingle() + Vector512.Create(DenormalMagic).AsSingle()).AsUInt32() - Vector512.Create(DenormalMagic);
        // Normal results: rebias the exponent and round to nearest even on bit 13.
        Vector512<uint> normal = (x + Vector512.Create(RebiasAndRound) + ((x >> 13) & Vector512<uint>.One)) >> 13;
        Vector512<uint> result = Vector512.ConditionalSelect(Vector512.LessThan(x, Vector512.Create(Float16MinNormalAsFloat32)), subnormal, normal);
        result = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(x, Vector512.Create(Float16MaxAsFloat32)), special, result);
        return result | (sign >> 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<uint> ToFloat16(Vector256<float> value)
    {
        Vector256<uint> x = value.AsUInt32();
        Vector256<uint> sign = x & Vector256.Create(0x80000000u);
        x ^= sign;
        Vector256<uint> special = Vector256.ConditionalSelect(Vector256.GreaterThan(x, Vector256.Create(Float32Infinity)),
            Vector256.Create(0x7E00u), Vector256.Create(0x7C00u));
        Vector256<uint> subnormal = (x.AsSingle() + Vector256.Create(DenormalMagic).AsSingle()).AsUInt32() - Vector256.Create(DenormalMagic);
        Vector256<uint> normal = (x + Vector256.Create(RebiasAndRound) + ((x >> 13) & Vector256<uint>.One)) >> 13;
        Vector256<uint> result = Vector256.ConditionalSelect(Vector256.LessThan(x, Vector256.Create(Float16MinNormalAsFloat32)), subnormal, normal);
        result = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(x, Vector256.Create(Float16MaxAsFloat32)), special, result);
        return result | (sign >> 16);
    }
}
