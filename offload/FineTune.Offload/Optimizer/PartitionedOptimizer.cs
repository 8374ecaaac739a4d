using System.Diagnostics;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// AdamW over parameters flattened into sub-groups whose fp32 master, m and v live in the host pool (resident) or
/// in NVMe swap (streamed through a few pool buffers: read k+1 | update k | write k-1). Usable from any training
/// loop: the caller owns each parameter's low-precision weights and gradients in host memory
/// (<see cref="HostParameter"/>); <see cref="Step"/> reads the gradients and rewrites the weights.
///
/// A step: (1) one streaming fp64 pass over all gradients gives the global norm and the overflow check (before any
/// sub-group changes, so a NaN anywhere skips the whole step); (2) the fused AdamW pass per sub-group with the
/// unscale-and-clip factor folded in. Every buffer is planned at construction: a step allocates no large host
/// memory (only small managed bookkeeping: segment and chunk lists).
/// Not thread-safe: one step at a time.
/// </summary>
public sealed partial class PartitionedOptimizer : IDisposable
{
    internal const string StateClass = "sub-group states";
    internal const string TailStateClass = "tail sub-group states";
    internal const string StagingClass = "fp32 gradient staging (baseline)";
    internal const string OverflowClass = "overflow check temporary (baseline)";

    private readonly IReadOnlyList<HostParameter> _parameters;
    private readonly List<SwapSlot> _slots = new();
    private readonly SwapSlot?[] _residentSlots;
    private readonly HostLease? _staging;
    private readonly HostLease? _overflowTemporary;
    private readonly ISwapStore? _store;
    private readonly SwapPipeline? _pipeline;
    private readonly DeviceAdamW? _deviceAdamW;

    private PartitionedOptimizer(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options,
        IReadOnlyList<SubGroup> groups, long subGroupElementCount, HostMemoryPool pool, ISwapStore? store)
    {
        _parameters = parameters;
        Options = options;
        SubGroups = groups;
        SubGroupElementCount = subGroupElementCount;
        Pool = pool;
        _store = store;
        _residentSlots = new SwapSlot?[groups.Count];
        LearningRate = options.AdamW.LearningRate;
        if (options.DeviceSubGroups is { } onDevice)
        {
            if (onDevice.Count != groups.Count)
                throw new ArgumentException($"DeviceSubGroups has {onDevice.Count} entries for {groups.Count} sub-groups.", nameof(options));
            if (onDevice.Any(d => d))
                _deviceAdamW = new DeviceAdamW(options.UpdateDevice);
        }
        if (options.Allocator == PoolAllocatorKind.Baseline)
        {
            _staging = pool.Rent(StagingClass);
            _overflowTemporary = pool.Rent(OverflowClass);
        }
        if (store is null)
        {
            foreach (SubGroup group in groups)
                _residentSlots[group.Index] = Track(new SwapSlot(pool.Rent(IsTail(group) ? TailStateClass : StateClass)));
            return;
        }
        var fullSlots = new List<SwapSlot>();
        for (int i = 0; i < pool.CountOf(StateClass); i++)
            fullSlots.Add(Track(new SwapSlot(pool.Rent(StateClass))));
        SwapSlot? tailSlot = pool.CountOf(TailStateClass) > 0 ? Track(new SwapSlot(pool.Rent(TailStateClass))) : null;
        _pipeline = new SwapPipeline(store, groups, fullSlots, tailSlot, subGroupElementCount, Counters, options.VerifySwapIntegrity);
    }

    public PartitionedOptimizerOptions Options { get; }

    public IReadOnlyList<SubGroup> SubGroups { get; }

    public long SubGroupElementCount { get; }

    /// <summary>The host pool holding every buffer of the optimizer (accounting: reserved, in use, peak).</summary>
    public HostMemoryPool Pool { get; }

    public OptimizerCounters Counters { get; } = new();

    /// <summary>Learning rate of the next step (set it per step for schedules).</summary>
    public double LearningRate { get; set; }

    /// <summary>Optimizer steps taken (skipped steps not counted), as PyTorch's state['step'].</summary>
    public long StepNumber { get; internal set; }

    /// <summary>Where states rest: "host", "memory" or the NVMe file and engine.</summary>
    public string StateLocation => _store?.Description ?? "host";

    public IReadOnlyList<HostParameter> Parameters => _parameters;

    /// <summary>Builds the layout and the pool (refusing a plan over the host budget), then fills the states.</summary>
    public static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options) =>
        Create(parameters, options, storeFactory: null);

    /// <summary>As <see cref="Create(IReadOnlyList{HostParameter}, PartitionedOptimizerOptions)"/> with a given swap store (fault-injection tests).</summary>
    internal static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options,
        Func<IReadOnlyList<long>, ISwapStore>? storeFactory)
    {
        Validate(parameters, weightsNeeded: options.InitialMasters is null || options.WeightWriteBack is null);
        long subGroupElementCount = RoundSubGroupElementCount(options.SubGroupElementCount, options.WeightWriteBack?.WeightType);
        if (options.WeightWriteBack is { } writeBack && parameters.Any(p => p.WeightType != writeBack.WeightType))
            throw new ArgumentException($"Every parameter's weights must be {writeBack.WeightType} to go through the weight write-back.", nameof(parameters));
        IReadOnlyList<SubGroup> groups = SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), subGroupElementCount);
        PoolPlan plan = PlanPool(groups, subGroupElementCount, options);
        HostMemoryPool pool = HostMemoryPool.Create(plan, options.HostBudgetByteCount, options.Allocator, options.HostRegistrar);
        ISwapStore? store = null;
        try
        {
            var extents = groups.Select(g => g.StateByteCount).ToList();
            store = storeFactory is not null ? storeFactory(extents) : options.Tier switch
            {
                StateTier.Host => null,
                StateTier.MemorySwap => new MemorySwapStore(extents),
                _ => NvmeSwapStore.Create(options.NvmeDirectory ?? throw new UserErrorException("States on NVMe need nvme_dir; set it to a directory on a fast local drive."),
                    extents, options.IoEngine, options.IoQueueDepth),
            };
            // InitialMasters is used here only; the optimizer does not keep the caller's callback (or what it captures)
            var optimizer = new PartitionedOptimizer(parameters, options with { InitialMasters = null }, groups, subGroupElementCount, pool, store);
            optimizer.FillStates((group, lease) =>
            {
                if (options.InitialMasters is { } initial)
                {
                    SubGroupStates.Clear(group, lease);
                    initial(group, lease.Buffer.Address);
                    return; // the weights are where they came from
                }
                SubGroupStates.Initialize(parameters, group, lease);
                if (optimizer.Options.WeightWriteBack is not null)
                    optimizer.WriteWeightsFromMaster(group, lease);
            });
            optimizer.Options.WeightWriteBack?.Flush();
            return optimizer;
        }
        catch
        {
            store?.Dispose();
            pool.Dispose();
            throw;
        }
    }

    /// <summary>
    /// <paramref name="requested"/> rounded up to 1,024 elements and, given <paramref name="weightType"/>, to a whole
    /// number of 4 KiB pages of such weights (2,048 elements for bf16/fp16), so each sub-group's weights start on a
    /// page of a weight file. The optimizer rounds by its write-back's type; the training engine rounds by the
    /// model's weight type whatever the tier and passes the result, so a checkpoint resumes under either tier.
    /// </summary>
    public static long RoundSubGroupElementCount(long requested, ElementType? weightType = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(requested);
        long unit = weightType is ElementType type ? Math.Max(1024, HostAlignment.PageByteCount / type.ByteCount()) : 1024;
        return (requested + unit - 1) / unit * unit;
    }

    /// <summary>
    /// The pool this configuration needs, by class: resident tier, one state buffer per sub-group; swap tiers,
    /// <see cref="PartitionedOptimizerOptions.PipelineBufferCount"/> full-size buffers; a smaller last sub-group gets
    /// one buffer of its exact size. The baseline adds what ZeRO-Infinity keeps besides: an fp32 gradient staging
    /// buffer, and the fp32 temporary its overflow check makes (`x.float()` in _has_inf_or_nan), one sub-group's worth.
    /// </summary>
    public static PoolPlan PlanPool(IReadOnlyList<SubGroup> groups, long subGroupElementCount, PartitionedOptimizerOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PipelineBufferCount, 2);
        int fullCount = groups.Count(g => g.ElementCount == subGroupElementCount);
        bool hasTail = groups.Count > fullCount;
        var plan = new PoolPlan();
        int fullBuffers = options.Tier == StateTier.Host ? fullCount : Math.Min(options.PipelineBufferCount, fullCount);
        if (fullBuffers > 0)
            plan.Add(StateClass, 12 * subGroupElementCount, fullBuffers);
        if (hasTail)
            plan.Add(TailStateClass, groups[^1].StateByteCount, 1);
        if (options.Allocator == PoolAllocatorKind.Baseline && groups.Count > 0)
        {
            plan.Add(StagingClass, 4 * groups.Max(g => g.ElementCount), 1);
            plan.Add(OverflowClass, 4 * groups.Max(g => g.ElementCount), 1);
        }
        return plan;
    }

    private static void Validate(IReadOnlyList<HostParameter> parameters, bool weightsNeeded)
    {
        var names = new HashSet<string>();
        foreach (HostParameter p in parameters)
        {
            if (!names.Add(p.Name))
                throw new ArgumentException($"Parameter '{p.Name}' is given twice.", nameof(parameters));
            if (p.ElementCount <= 0 || (weightsNeeded && p.Weight == 0) || p.Gradient == 0)
                throw new ArgumentException($"Parameter '{p.Name}' needs a positive element count and weight and gradient memory.", nameof(parameters));
            if (p.GradientType == ElementType.Float16)
                throw new ArgumentException($"Parameter '{p.Name}': gradients must be fp32 or bf16.", nameof(parameters));
        }
    }

    private bool IsTail(SubGroup group) => group.ElementCount != SubGroupElementCount;

    private SwapSlot Track(SwapSlot slot)
    {
        _slots.Add(slot);
        return slot;
    }

    /// <summary>
    /// One AdamW step at <see cref="LearningRate"/>. Gradients are divided by <paramref name="lossScale"/> and clipped
    /// to AdamWOptions.MaxGradNorm inside the fused pass. A NaN or infinite gradient skips the step (counted).
    /// </summary>
    public StepResult Step(double lossScale = 1.0) => Task.Run(() => StepAsync(lossScale)).GetAwaiter().GetResult();

    public async Task<StepResult> StepAsync(double lossScale = 1.0)
    {
        long start = Stopwatch.GetTimestamp();
        double sumOfSquares = _overflowTemporary is null
            ? GradientNorm.SumOfSquares(_parameters.Select(p => (p.Gradient, p.GradientType, p.ElementCount)).ToList(), Options.MaxDegreeOfParallelism)
            : BaselineSumOfSquares();
        Counters.NormSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
        double norm = Math.Sqrt(sumOfSquares) / lossScale;
        if (!double.IsFinite(norm))
        {
            Counters.SkippedSteps++;
            return new StepResult(true, norm, 1.0, StepNumber);
        }
        // reference: torch.nn.utils.clip_grad_norm_: clip_coef = max_norm / (total_norm + 1e-6), clamped to 1.
        double maxNorm = Options.AdamW.MaxGradNorm;
        double clip = maxNorm > 0 ? Math.Min(1.0, maxNorm / (norm + 1e-6)) : 1.0;
        StepNumber++;
        AdamWStepScalars scalars = AdamWStepScalars.For(Options.AdamW, StepNumber, LearningRate, clip / lossScale);
        if (_pipeline is null)
        {
            foreach (SubGroup group in SubGroups)
            {
                SwapSlot slot = _residentSlots[group.Index]!;
                slot.MoveTo(SwapBufferState.Filling, group.Index);
                Update(group, slot.Lease, scalars);
                slot.MoveTo(SwapBufferState.Ready, group.Index);
            }
        }
        else
        {
            await _pipeline.UpdateAllAsync((group, lease) => Update(group, lease, scalars)).ConfigureAwait(false);
        }
        Options.WeightWriteBack?.Flush();
        Counters.Steps++;
        Counters.PeakResidentByteCount = ProcessMemory.PeakResidentByteCount();
        return new StepResult(false, norm, clip, StepNumber);
    }

    /// <summary>The baseline's overflow check: each sub-group's gradients cast into an fp32 temporary, then summed.</summary>
    private unsafe double BaselineSumOfSquares()
    {
        double total = 0;
        var temporary = (float*)_overflowTemporary!.Pointer;
        foreach (SubGroup group in SubGroups)
        {
            foreach (SubGroupSegment s in group.Segments)
            {
                HostParameter p = _parameters[s.Parameter];
                SubGroupStates.StageToFloat32(p.Gradient + (nint)(s.ParameterOffset * p.GradientType.ByteCount()), p.GradientType, temporary + s.GroupOffset, s.ElementCount);
            }
            total += GradientNorm.SumOfSquares(new[] { ((nint)temporary, ElementType.Float32, group.ElementCount) }, Options.MaxDegreeOfParallelism);
        }
        return total;
    }

    private unsafe void Update(SubGroup group, HostLease states, in AdamWStepScalars scalars)
    {
        long start = Stopwatch.GetTimestamp();
        byte* basePointer = states.Pointer;
        long n = group.ElementCount;
        var segments = new AdamWSegment[group.Segments.Count];
        IWeightWriteBack? writeBack = Options.WeightWriteBack;
        nint weights = writeBack?.Rent(group) ?? 0;
        for (int i = 0; i < segments.Length; i++)
        {
            SubGroupSegment s = group.Segments[i];
            HostParameter p = _parameters[s.Parameter];
            nint gradient = p.Gradient + (nint)(s.ParameterOffset * p.GradientType.ByteCount());
            ElementType gradientType = p.GradientType;
            if (_staging is not null)
            {
                // Baseline (ZeRO-Infinity): gradients are first copied into an fp32 staging buffer, then read from it.
                float* staged = (float*)_staging.Pointer + s.GroupOffset;
                SubGroupStates.StageToFloat32(gradient, gradientType, staged, s.ElementCount);
                gradient = (nint)staged;
                gradientType = ElementType.Float32;
            }
            segments[i] = new AdamWSegment(
                (nint)(basePointer + 4 * s.GroupOffset),
                (nint)(basePointer + 4 * (n + s.GroupOffset)),
                (nint)(basePointer + 4 * (2 * n + s.GroupOffset)),
                gradient, gradientType,
                writeBack is null ? p.Weight + (nint)(s.ParameterOffset * p.WeightType.ByteCount()) : weights + (nint)(s.GroupOffset * p.WeightType.ByteCount()),
                p.WeightType,
                s.ElementCount);
        }
        if (_deviceAdamW is not null && Options.DeviceSubGroups![group.Index])
            _deviceAdamW.Update(scalars, segments);
        else if (!CpuAdamW.Update(scalars, segments, Options.MaxDegreeOfParallelism))
            throw new InvalidOperationException($"Sub-group {group.Index} saw a non-finite gradient that the norm pass did not: gradients changed during the step.");
        writeBack?.Commit(group);
        Counters.UpdateSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>Writes <paramref name="fill"/>'s states for every sub-group (construction, checkpoint load).</summary>
    internal void FillStates(Action<SubGroup, HostLease> fill)
    {
        if (_pipeline is not null)
        {
            Task.Run(() => _pipeline.FillAllAsync(fill)).GetAwaiter().GetResult();
            return;
        }
        foreach (SubGroup group in SubGroups)
        {
            SwapSlot slot = _residentSlots[group.Index]!;
            slot.MoveTo(SwapBufferState.Filling, group.Index);
            fill(group, slot.Lease);
            slot.MoveTo(SwapBufferState.Ready, group.Index);
        }
    }

    /// <summary>Hands every sub-group's current states to <paramref name="visit"/> (checkpoint save), in order.</summary>
    internal void VisitStates(Action<SubGroup, HostLease> visit)
    {
        if (_pipeline is not null)
        {
            Task.Run(() => _pipeline.VisitAllAsync(visit)).GetAwaiter().GetResult();
            return;
        }
        foreach (SubGroup group in SubGroups)
            visit(group, _residentSlots[group.Index]!.Lease);
    }

    /// <summary>Rewrites <paramref name="group"/>'s low-precision weights from its masters (into the write-back when there is one; the caller flushes it).</summary>
    internal void WriteWeightsFromMaster(SubGroup group, HostLease states)
    {
        if (Options.WeightWriteBack is not { } writeBack)
        {
            SubGroupStates.WriteWeightsFromMaster(_parameters, group, states);
            return;
        }
        SubGroupStates.WriteGroupWeightsFromMaster(group, states, writeBack.Rent(group), writeBack.WeightType);
        writeBack.Commit(group);
    }

    /// <summary>Writes the optimizer state to <paramref name="directory"/> (see <see cref="OptimizerStateFile"/>).</summary>
    public void SaveState(string directory) => OptimizerStateFile.Save(this, directory);

    /// <summary>Replaces the state with the one saved in <paramref name="directory"/>, rewriting the weights from it.</summary>
    public void LoadState(string directory) => OptimizerStateFile.Load(this, directory);

    /// <summary>Zeroes every parameter's gradient memory.</summary>
    public unsafe void ZeroGrad()
    {
        foreach (HostParameter p in _parameters)
            System.Runtime.InteropServices.NativeMemory.Clear((void*)p.Gradient, (nuint)(p.ElementCount * p.GradientType.ByteCount()));
    }

    public void Dispose()
    {
        _pipeline?.Quiesce();
        foreach (SwapSlot slot in _slots)
            slot.Lease.Dispose();
        _slots.Clear();
        _staging?.Dispose();
        _overflowTemporary?.Dispose();
        _store?.Dispose();
        _deviceAdamW?.Dispose();
        Pool.Dispose();
    }
}
