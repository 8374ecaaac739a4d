using FineTune.Offload.Adam;
using System.Runtime.InteropServices;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Element-wise moves between a sub-group's state buffer and the parameters' own memory: the initial fill, the
/// weight rewrite after a checkpoint load, and the baseline's fp32 gradient staging. These fill and read whole fp32
/// masters ((3, n) fp32: master, m, v); <see cref="Encode"/> then lays the buffer out as the group's
/// <see cref="SubGroup.Encoding"/>. None of these runs in the steady-state step of the exact pool.
/// </summary>
internal static class SubGroupStates
{
    /// <summary>Master from the initial fp32 values or the weights (representable); m and v zero.</summary>
    public static unsafe void Initialize(IReadOnlyList<HostParameter> parameters, SubGroup group, HostLease states)
    {
        var master = (float*)states.Pointer;
        long n = group.ElementCount;
        foreach (SubGroupSegment s in group.Segments)
        {
            HostParameter p = parameters[s.Parameter];
            for (long i = 0; i < s.ElementCount; i++)
            {
                long at = s.ParameterOffset + i;
                master[s.GroupOffset + i] = p.InitialMaster != 0 ? ((float*)p.InitialMaster)[at] : LowPrecision.ToFloat32(p.WeightType, p.Weight, at);
            }
        }
        new Span<byte>(states.Pointer + 4 * n, checked((int)(8 * n))).Clear();
        Representable(parameters, group, states);
    }

    /// <summary>The masters of bf16 weights made <see cref="MasterResidual.Representable(float)"/>, as every update leaves them (fp32 layout).</summary>
    public static unsafe void Representable(IReadOnlyList<HostParameter> parameters, SubGroup group, HostLease states)
    {
        var master = (float*)states.Pointer;
        foreach (SubGroupSegment s in group.Segments)
            if (parameters[s.Parameter].WeightType == ElementType.BFloat16)
                for (long i = s.GroupOffset; i < s.GroupOffset + s.ElementCount; i++)
                    master[i] = MasterResidual.Representable(master[i]);
    }

    /// <summary>
    /// Lays out a buffer of whole fp32 masters (representable) and m, v as <paramref name="group"/>'s encoding: for
    /// residual masters, [m | v] moves to the front and the residuals over the masters' own bf16 rounding follow.
    /// </summary>
    public static unsafe void Encode(IReadOnlyList<HostParameter> parameters, SubGroup group, HostLease states)
    {
        if (group.Encoding == StateEncoding.Float32Master)
            return;
        long n = group.ElementCount;
        var master = (float*)states.Pointer;
        var residuals = (short*)NativeMemory.Alloc((nuint)(2 * n));
        try
        {
            for (long i = 0; i < n; i++)
                residuals[i] = MasterResidual.Residual(master[i], LowPrecision.ToBFloat16(master[i]));
            Buffer.MemoryCopy(states.Pointer + 4 * n, states.Pointer, 8 * n, 8 * n);
            Buffer.MemoryCopy(residuals, states.Pointer + 8 * n, 2 * n, 2 * n);
        }
        finally
        {
            NativeMemory.Free(residuals);
        }
    }

    /// <summary>
    /// The inverse of <see cref="Encode"/>, for whole masters loaded from residual ones: [m | v | residuals] back to
    /// [master | m | v], each master rebuilt from its residual and <paramref name="weights"/>[i], the bf16 weight of
    /// group element i that completes it (the checkpoint's, which the model was loaded with).
    /// </summary>
    public static unsafe void Decode(SubGroup group, HostLease states, ushort* weights)
    {
        long n = group.ElementCount;
        var masters = (float*)NativeMemory.Alloc((nuint)(4 * n));
        try
        {
            MasterResidual.Decode(weights, (short*)(states.Pointer + 8 * n), masters, n);
            Buffer.MemoryCopy(states.Pointer, states.Pointer + 4 * n, 8 * n, 8 * n); // m and v move up over the residuals
            Buffer.MemoryCopy(masters, states.Pointer, 4 * n, 4 * n);
        }
        finally
        {
            NativeMemory.Free(masters);
        }
    }

    /// <summary>Zeroes master, m and v (the caller then fills the masters).</summary>
    public static unsafe void Clear(SubGroup group, HostLease states) =>
        new Span<byte>(states.Pointer, checked((int)(12 * group.ElementCount))).Clear();

    /// <summary>Rewrites every parameter's low-precision weights from the fp32 masters (after a checkpoint load).</summary>
    public static unsafe void WriteWeightsFromMaster(IReadOnlyList<HostParameter> parameters, SubGroup group, HostLease states)
    {
        var master = (float*)states.Pointer;
        foreach (SubGroupSegment s in group.Segments)
        {
            HostParameter p = parameters[s.Parameter];
            for (long i = 0; i < s.ElementCount; i++)
            {
                float value = master[s.GroupOffset + i];
                long at = s.ParameterOffset + i;
                switch (p.WeightType)
                {
                    case ElementType.Float32: ((float*)p.Weight)[at] = value; break;
                    case ElementType.BFloat16: ((ushort*)p.Weight)[at] = LowPrecision.ToBFloat16(value); break;
                    default: ((ushort*)p.Weight)[at] = LowPrecision.ToFloat16(value); break;
                }
            }
        }
    }

    /// <summary>Writes a sub-group's weights from its masters into one flat buffer (element i of the group at <paramref name="weights"/> + i).</summary>
    public static unsafe void WriteGroupWeightsFromMaster(SubGroup group, HostLease states, nint weights, ElementType type)
    {
        var master = (float*)states.Pointer;
        for (long i = 0; i < group.ElementCount; i++)
        {
            switch (type)
            {
                case ElementType.Float32: ((float*)weights)[i] = master[i]; break;
                case ElementType.BFloat16: ((ushort*)weights)[i] = LowPrecision.ToBFloat16(master[i]); break;
                default: ((ushort*)weights)[i] = LowPrecision.ToFloat16(master[i]); break;
            }
        }
    }

    public static unsafe void StageToFloat32(nint gradient, ElementType type, float* target, long elementCount)
    {
        if (type == ElementType.Float32)
        {
            Buffer.MemoryCopy((void*)gradient, target, elementCount * 4, elementCount * 4);
            return;
        }
        var source = (ushort*)gradient;
        Parallel.For(0, (elementCount + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount, c =>
        {
            long end = Math.Min(elementCount, (c + 1) * CpuAdamW.ChunkElementCount);
            for (long i = c * CpuAdamW.ChunkElementCount; i < end; i++)
                target[i] = LowPrecision.FromBFloat16(source[i]);
        });
    }
}
