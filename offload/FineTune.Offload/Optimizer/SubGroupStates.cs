using FineTune.Offload.Adam;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Element-wise moves between a sub-group's state buffer ((3, n) fp32: master, m, v) and the parameters' own
/// memory: the initial fill, the weight rewrite after a checkpoint load, and the baseline's fp32 gradient staging.
/// None of these runs in the steady-state step of the exact pool.
/// </summary>
internal static class SubGroupStates
{
    /// <summary>Master from the initial fp32 values or the weights; m and v zero.</summary>
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
