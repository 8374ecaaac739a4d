using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FineTune.Offload.Adam;

/// <summary>
/// An fp32 master weight stored as its bf16 weight W (round to nearest even, the weight the model computes with) and
/// a 16-bit residual d = bits(master) - (W &lt;&lt; 16), so the master's upper half is never stored twice: the update
/// reads d, m and v (10 bytes) instead of master, m and v (12), and writes the same 10 plus the weight it writes anyway.
/// d lies in [-0x8000, +0x8000]: 65,537 values, one more than 16 bits name. The one left out, +0x8000, is the master
/// whose lower half is exactly 0x8000 below an even upper half (a tie rounded down); <see cref="Representable"/> moves
/// it one ulp towards zero, which keeps its weight. With bf16 weights every master the optimizer makes goes through
/// it (the CPU kernel, the initial fill), whether stored this way or whole, so both storages give the same bits.
/// On the 2^32 patterns: one in 2^17 moves, by 2^-24 of its value; NaN is left as it is.
/// </summary>
public static class MasterResidual
{
    /// <summary>The master the pair (W, d) can hold: <paramref name="master"/>, or one ulp towards zero for the unrepresentable tie.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Representable(float master)
    {
        uint bits = BitConverter.SingleToUInt32Bits(master);
        return (bits & 0x1FFFF) == 0x8000 && !float.IsNaN(master) ? BitConverter.UInt32BitsToSingle(bits - 1) : master;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector512<float> Representable(Vector512<float> master)
    {
        Vector512<uint> bits = master.AsUInt32();
        // the tie mask is all ones (-1) where (bits & 0x1FFFF) == 0x8000, so adding it subtracts 1 there; NaN is left as it is
        Vector512<uint> tie = Vector512.Equals(bits & Vector512.Create(0x1FFFFu), Vector512.Create(0x8000u)) & Vector512.Equals(master, master).AsUInt32();
        return (bits + tie).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> Representable(Vector256<float> master)
    {
        Vector256<uint> bits = master.AsUInt32();
        Vector256<uint> tie = Vector256.Equals(bits & Vector256.Create(0x1FFFFu), Vector256.Create(0x8000u)) & Vector256.Equals(master, master).AsUInt32();
        return (bits + tie).AsSingle();
    }

    /// <summary>d of a representable <paramref name="master"/> whose bf16 weight is <paramref name="weight"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static short Residual(float master, ushort weight) => (short)(BitConverter.SingleToUInt32Bits(master) - ((uint)weight << 16));

    /// <summary>The master of the pair: bits (W &lt;&lt; 16) + d.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Master(ushort weight, short residual) => BitConverter.UInt32BitsToSingle(((uint)weight << 16) + (uint)(int)residual);

    /// <summary>masters[i] = Master(weights[i], residuals[i]) for <paramref name="count"/> elements.</summary>
    public static unsafe void Decode(ushort* weights, short* residuals, float* masters, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= count; i += 32)
            {
                (Vector512<uint> w0, Vector512<uint> w1) = Vector512.Widen(Vector512.Load(weights + i));
                (Vector512<int> d0, Vector512<int> d1) = Vector512.Widen(Vector512.Load(residuals + i));
                ((w0 << 16) + d0.AsUInt32()).AsSingle().Store(masters + i);
                ((w1 << 16) + d1.AsUInt32()).AsSingle().Store(masters + i + 16);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= count; i += 16)
            {
                (Vector256<uint> w0, Vector256<uint> w1) = Vector256.Widen(Vector256.Load(weights + i));
                (Vector256<int> d0, Vector256<int> d1) = Vector256.Widen(Vector256.Load(residuals + i));
                ((w0 << 16) + d0.AsUInt32()).AsSingle().Store(masters + i);
                ((w1 << 16) + d1.AsUInt32()).AsSingle().Store(masters + i + 8);
            }
        }
        for (; i < count; i++)
            masters[i] = Master(weights[i], residuals[i]);
    }

    /// <summary>residuals[i] = Residual(masters[i], weights[i]) for <paramref name="count"/> representable masters and their weights.</summary>
    public static unsafe void Encode(float* masters, ushort* weights, short* residuals, long count)
    {
        long i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            for (; i + 32 <= count; i += 32)
            {
                (Vector512<uint> w0, Vector512<uint> w1) = Vector512.Widen(Vector512.Load(weights + i));
                Vector512<uint> d0 = Vector512.Load(masters + i).AsUInt32() - (w0 << 16);
                Vector512<uint> d1 = Vector512.Load(masters + i + 16).AsUInt32() - (w1 << 16);
                Vector512.Narrow(d0.AsInt32(), d1.AsInt32()).Store(residuals + i);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            for (; i + 16 <= count; i += 16)
            {
                (Vector256<uint> w0, Vector256<uint> w1) = Vector256.Widen(Vector256.Load(weights + i));
                Vector256<uint> d0 = Vector256.Load(masters + i).AsUInt32() - (w0 << 16);
                Vector256<uint> d1 = Vector256.Load(masters + i + 8).AsUInt32() - (w1 << 16);
                Vector256.Narrow(d0.AsInt32(), d1.AsInt32()).Store(residuals + i);
            }
        }
        for (; i < count; i++)
            residuals[i] = Residual(masters[i], weights[i]);
    }
}
