using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;

namespace FineTune.Offload.Bench;

/// <summary>
/// The ZeRO-Infinity-like baseline the exact pool is measured against (DESIGN: "a baseline allocator stays
/// selectable, so the saving is measured, not claimed"): the same optimizer with DeepSpeed's host-memory habits —
/// every pool buffer sized for the largest class and rounded to a power of two, an fp32 gradient staging buffer each
/// sub-group's gradients are copied into before the update, and the fp32 temporary its overflow check makes
/// (`x.float()` in _has_inf_or_nan), one sub-group's worth. Results are bit-identical to the exact optimizer.
/// Bench and test code only; production never builds it.
/// </summary>
public static class ZeroInfinityBaseline
{
    /// <summary>The optimizer with the baseline allocator and its staging buffers.</summary>
    public static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options)
    {
        options = options with { Allocator = PoolAllocatorKind.Baseline };
        long subGroup = PartitionedOptimizer.RoundSubGroupElementCount(options.SubGroupElementCount, options.WeightWriteBack?.WeightType);
        IReadOnlyList<SubGroup> groups = SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), subGroup);
        PoolPlan plan = PlanPool(groups, subGroup, options);
        var pool = HostMemoryPool.Create(plan, options.HostBudgetByteCount, PoolAllocatorKind.Baseline, options.HostRegistrar);
        HostLease? staging = null, temporary = null;
        try
        {
            staging = pool.Rent(BufferKind.BaselineGradientStaging);
            temporary = pool.Rent(BufferKind.BaselineOverflowTemporary);
            PartitionedOptimizer optimizer = PartitionedOptimizer.CreateOwningPool(parameters, options, pool);
            optimizer.Gradients = new StagedGradients(parameters, optimizer.SubGroups, staging, temporary, options.MaxDegreeOfParallelism);
            return optimizer;
        }
        catch
        {
            staging?.Dispose();
            temporary?.Dispose();
            pool.Dispose();
            throw;
        }
    }

    /// <summary>The optimizer's classes plus the staging buffer and the overflow temporary.</summary>
    public static PoolPlan PlanPool(IReadOnlyList<SubGroup> groups, long subGroupElementCount, PartitionedOptimizerOptions options)
    {
        PoolPlan plan = PartitionedOptimizer.PlanPool(groups, subGroupElementCount, options);
        if (groups.Count > 0)
        {
            plan.Add(BufferKind.BaselineGradientStaging, 4 * groups.Max(g => g.ElementCount), 1);
            plan.Add(BufferKind.BaselineOverflowTemporary, 4 * groups.Max(g => g.ElementCount), 1);
        }
        return plan;
    }

    /// <summary>Gradients copied into the fp32 staging buffer before each segment is read; the norm through the temporary.</summary>
    private sealed unsafe class StagedGradients(IReadOnlyList<HostParameter> parameters, IReadOnlyList<SubGroup> groups, HostLease staging,
        HostLease temporary, int maxDegreeOfParallelism) : IGradientSource
    {
        public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment)
        {
            HostParameter p = parameters[segment.Parameter];
            float* staged = (float*)staging.Pointer + segment.GroupOffset;
            SubGroupStates.StageToFloat32(p.Gradient + (nint)(segment.ParameterOffset * p.GradientType.ByteCount()), p.GradientType, staged, segment.ElementCount);
            return ((nint)staged, ElementType.Float32);
        }

        /// <summary>The baseline's overflow check: each sub-group's gradients cast into an fp32 temporary, then summed.</summary>
        public double SumOfSquares(int _)
        {
            double total = 0;
            var target = (float*)temporary.Pointer;
            foreach (SubGroup group in groups)
            {
                foreach (SubGroupSegment s in group.Segments)
                {
                    HostParameter p = parameters[s.Parameter];
                    SubGroupStates.StageToFloat32(p.Gradient + (nint)(s.ParameterOffset * p.GradientType.ByteCount()), p.GradientType, target + s.GroupOffset, s.ElementCount);
                }
                total += GradientNorm.SumOfSquares(new[] { ((nint)target, ElementType.Float32, group.ElementCount) }, maxDegreeOfParallelism);
            }
            return total;
        }
    }
}
