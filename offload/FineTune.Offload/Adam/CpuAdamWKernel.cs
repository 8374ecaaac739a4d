using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace FineTune.Offload.Adam;

/// <summary>
/// The fused CPU AdamW pass over one contiguous run of elements: per element it reads the gradient (fp32 or bf16),
/// multiplies it by the step's unscale-and-clip factor, probes it for NaN/Inf, updates the fp32 master weight and
/// the moments m and v in place, and writes the low-precision weight copy (fp32, bf16 or f16); with bf16 weights the
/// new master is <see cref="MasterResidual.Representable(float)"/> (one in 2^17 moves by an ulp). Everything stays in
/// registers; the only memory touched is the buffers that already exist.
/// Vector512 when the hardware accelerates it, else Vector256, else scalar; every path does the same IEEE
/// operations in the same order (FMA, sqrt and division are exactly rounded), so results do not depend on the path
/// or on where a run is split into chunks.
/// This file is one long linear kernel by design: the three widths must be read side by side.
/// Single-threaded; <see cref="CpuAdamW"/> splits work across cores.
/// </summary>
internal static unsafe class CpuAdamWKernel
{
    /// <summary>
    /// Updates <paramref name="elementCount"/> elements. Returns false when any gradient read was NaN or infinite
    /// (the update has still been applied; callers decide about skipping before calling, see GradientNorm).
    /// </summary>
    public static bool Run(in AdamWStepScalars s, float* master, float* m, float* v,
        void* gradient, ElementType gradientType, void* weight, ElementType weightType, long elementCount)
    {
        long i = 0;
        float probe = 0;
        bool representable = weightType == ElementType.BFloat16; // see MasterResidual
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> probe512 = Vector512<float>.Zero;
            for (; i + 32 <= elementCount; i += 32)
            {
                LoadGradient512(gradient, gradientType, i, out Vector512<float> g0, out Vector512<float> g1);
                probe512 += g0 * Vector512<float>.Zero + g1 * Vector512<float>.Zero;
                Vector512<float> p0 = Update512(s, master + i, m + i, v + i, g0, representable);
                Vector512<float> p1 = Update512(s, master + i + 16, m + i + 16, v + i + 16, g1, representable);
                StoreWeight512(weight, weightType, i, p0, p1);
            }
            probe += Vector512.Sum(probe512);
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> probe256 = Vector256<float>.Zero;
            for (; i + 16 <= elementCount; i += 16)
            {
                LoadGradient256(gradient, gradientType, i, out Vector256<float> g0, out Vector256<float> g1);
                probe256 += g0 * Vector256<float>.Zero + g1 * Vector256<float>.Zero;
                Vector256<float> p0 = Update256(s, master + i, m + i, v + i, g0, representable);
                Vector256<float> p1 = Update256(s, master + i + 8, m + i + 8, v + i + 8, g1, representable);
                StoreWeight256(weight, weightType, i, p0, p1);
            }
            probe += Vector256.Sum(probe256);
        }
        for (; i < elementCount; i++)
        {
            float g = gradientType == ElementType.Float32 ? ((float*)gradient)[i] : LowPrecision.FromBFloat16(((ushort*)gradient)[i]);
            probe += g * 0f;
            float p = UpdateScalar(s, master + i, m + i, v + i, g, representable);
            switch (weightType)
            {
                case ElementType.Float32: ((float*)weight)[i] = p; break;
                case ElementType.BFloat16: ((ushort*)weight)[i] = LowPrecision.ToBFloat16(p); break;
                default: ((ushort*)weight)[i] = LowPrecision.ToFloat16(p); break;
            }
        }
        // g * 0 is 0 for every finite g and NaN for NaN or infinity, so the probe is finite iff all gradients were.
        return float.IsFinite(probe);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float UpdateScalar(in AdamWStepScalars s, float* master, float* m, float* v, float gradient, bool representable)
    {
        float g = gradient * s.GradientMultiplier;
        float p = *master * s.Decay;
        float mm = MathF.FusedMultiplyAdd(s.Beta1, *m, s.OneMinusBeta1 * g);
        float vv = MathF.FusedMultiplyAdd(s.Beta2, *v, s.OneMinusBeta2 * g * g);
        float denom = MathF.Sqrt(vv) / s.BiasCorrection2Sqrt + s.Epsilon;
        p = MathF.FusedMultiplyAdd(s.NegativeStepSize, mm / denom, p);
        if (representable)
            p = MasterResidual.Representable(p);
        *master = p;
        *m = mm;
        *v = vv;
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Update512(in AdamWStepScalars s, float* master, float* m, float* v, Vector512<float> gradient, bool representable)
    {
        Vector512<float> g = gradient * Vector512.Create(s.GradientMultiplier);
        Vector512<float> p = Vector512.Load(master) * Vector512.Create(s.Decay);
        Vector512<float> mm = Vector512.FusedMultiplyAdd(Vector512.Create(s.Beta1), Vector512.Load(m), Vector512.Create(s.OneMinusBeta1) * g);
        Vector512<float> vv = Vector512.FusedMultiplyAdd(Vector512.Create(s.Beta2), Vector512.Load(v), Vector512.Create(s.OneMinusBeta2) * g * g);
        Vector512<float> denom = Vector512.Sqrt(vv) / Vector512.Create(s.BiasCorrection2Sqrt) + Vector512.Create(s.Epsilon);
        p = Vector512.FusedMultiplyAdd(Vector512.Create(s.NegativeStepSize), mm / denom, p);
        if (representable)
            p = MasterResidual.Representable(p);
        p.Store(master);
        mm.Store(m);
        vv.Store(v);
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> Update256(in AdamWStepScalars s, float* master, float* m, float* v, Vector256<float> gradient, bool representable)
    {
        Vector256<float> g = gradient * Vector256.Create(s.GradientMultiplier);
        Vector256<float> p = Vector256.Load(master) * Vector256.Create(s.Decay);
        Vector256<float> mm = Vector256.FusedMultiplyAdd(Vector256.Create(s.Beta1), Vector256.Load(m), Vector256.Create(s.OneMinusBeta1) * g);
        Vector256<float> vv = Vector256.FusedMultiplyAdd(Vector256.Create(s.Beta2), Vector256.Load(v), Vector256.Create(s.OneMinusBeta2) * g * g);
        Vector256<float> denom = Vector256.Sqrt(vv) / Vector256.Create(s.BiasCorrection2Sqrt) + Vector256.Create(s.Epsilon);
        p = Vector256.FusedMultiplyAdd(Vector256.Create(s.NegativeStepSize), mm / denom, p);
        if (representable)
            p = MasterResidual.Representable(p);
        p.Store(master);
        mm.Store(m);
        vv.Store(v);
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadGradient512(void* gradient, ElementType type, long i, out Vector512<float> g0, out Vector512<float> g1)
    {
        if (type == ElementType.Float32)
        {
            g0 = Vector512.Load((float*)gradient + i);
            g1 = Vector512.Load((float*)gradient + i + 16);
            return;
        }
        // bf16 is the top half of a float: widen to 32 bits and shift.
        (Vector512<uint> lower, Vector512<uint> upper) = Vector512.Widen(Vector512.Load((ushort*)gradient + i));
        g0 = (lower << 16).AsSingle();
        g1 = (upper << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void LoadGradient256(void* gradient, ElementType type, long i, out Vector256<float> g0, out Vector256<float> g1)
    {
        if (type == ElementType.Float32)
        {
            g0 = Vector256.Load((float*)gradient + i);
            g1 = Vector256.Load((float*)gradient + i + 8);
            return;
        }
        (Vector256<uint> lower, Vector256<uint> upper) = Vector256.Widen(Vector256.Load((ushort*)gradient + i));
        g0 = (lower << 16).AsSingle();
        g1 = (upper << 16).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWeight512(void* weight, ElementType type, long i, Vector512<float> p0, Vector512<float> p1)
    {
        switch (type)
        {
            case ElementType.Float32:
                p0.Store((float*)weight + i);
                p1.Store((float*)weight + i + 16);
                break;
            case ElementType.BFloat16:
                Vector512.Narrow(LowPrecision.ToBFloat16(p0), LowPrecision.ToBFloat16(p1)).Store((ushort*)weight + i);
                break;
            default:
                Vector512.Narrow(LowPrecision.ToFloat16(p0), LowPrecision.ToFloat16(p1)).Store((ushort*)weight + i);
                break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreWeight256(void* weight, ElementType type, long i, Vector256<float> p0, Vector256<float> p1)
    {
        switch (type)
        {
            case ElementType.Float32:
                p0.Store((float*)weight + i);
                p1.Store((float*)weight + i + 8);
                break;
            case ElementType.BFloat16:
                Vector256.Narrow(LowPrecision.ToBFloat16(p0), LowPrecision.ToBFloat16(p1)).Store((ushort*)weight + i);
                break;
            default:
                Vector256.Narrow(LowPrecision.ToFloat16(p0), LowPrecision.ToFloat16(p1)).Store((ushort*)weight + i);
                break;
        }
    }
}
