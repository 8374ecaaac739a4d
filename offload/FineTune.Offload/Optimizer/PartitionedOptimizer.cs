using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Rings;
using FineTune.Offload.Swap;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// AdamW over parameters flattened into sub-groups whose fp32 master, m and v live in the host pool (resident) or
/// in NVMe swap (streamed through a ring of pool buffers: read k+1 | update k | write k-1). Usable from any training
/// loop: the caller owns each parameter's low-precision weights and gradients in host memory
/// (<see cref="HostParameter"/>); a step reads the gradients (through an <see cref="IGradientSource"/>) and rewrites
/// the weights (in place, or through an <see cref="IWeightWriteBack"/> when they live on NVMe).
///
/// The steps (PartitionedOptimizer.Steps.cs): a plain step, one norm pass then every sub-group in order; an
/// overlapped step that updates each sub-group as soon as the caller says its gradients are final (no clipping);
/// and a step whose first state reads start before the gradients are final (clipping or loss scaling).
/// Every buffer is planned at construction: a step allocates no large host memory.
/// Not thread-safe: one step at a time.
/// </summary>
public sealed partial class PartitionedOptimizer : IDisposable
{
    private readonly IReadOnlyList<HostParameter> _parameters;
    private readonly HostLease?[] _resident;
    private readonly BufferRing? _fullRing;
    private readonly BufferRing? _tailRing;
    private readonly ISwapStore? _store;
    private readonly SwapPipeline? _pipeline;
    private readonly DeviceAdamW? _deviceAdamW;
    private bool _ownsPool;

    private PartitionedOptimizer(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options,
        IReadOnlyList<SubGroup> groups, long subGroupElementCount, HostMemoryPool pool, bool ownsPool, ISwapStore? store)
    {
        _parameters = parameters;
        Options = options;
        SubGroups = groups;
        SubGroupElementCount = subGroupElementCount;
        Pool = pool;
        _ownsPool = ownsPool;
        _store = store;
        Gradients = options.Gradients ?? new HostParameterGradients(parameters);
        _resident = new HostLease?[groups.Count];
        LearningRate = options.AdamW.LearningRate;
        if (options.DeviceSubGroups is { } onDevice)
        {
            if (onDevice.Count != groups.Count)
                throw new ArgumentException($"DeviceSubGroups has {onDevice.Count} entries for {groups.Count} sub-groups.", nameof(options));
            if (onDevice.Any(d => d))
                _deviceAdamW = new DeviceAdamW(options.UpdateDevice);
        }
        if (store is null)
        {
            foreach (SubGroup group in groups)
                _resident[group.Index] = pool.Rent(IsTail(group) ? BufferKind.OptimizerTailStates : BufferKind.OptimizerStates);
            return;
        }
        if (pool.CountOf(BufferKind.OptimizerStates) > 0)
            _fullRing = new BufferRing("optimizer states", pool.RentAll(BufferKind.OptimizerStates), Counters);
        if (pool.CountOf(BufferKind.OptimizerTailStates) > 0)
            _tailRing = new BufferRing("optimizer tail states", pool.RentAll(BufferKind.OptimizerTailStates), Counters);
        _pipeline = new SwapPipeline(store, groups, _fullRing, _tailRing, subGroupElementCount, options.VerifySwapIntegrity);
    }

    public PartitionedOptimizerOptions Options { get; }

    public IReadOnlyList<SubGroup> SubGroups { get; }

    public long SubGroupElementCount { get; }

    /// <summary>The host pool holding every buffer of the optimizer (its own, or the training engine's shared one).</summary>
    public HostMemoryPool Pool { get; }

    /// <summary>State bytes moved and waited for (swap tiers), and the seconds of the AdamW and norm passes.</summary>
    public TransferCounters Counters { get; } = new();

    /// <summary>Where gradients are read; the ZeRO-Infinity baseline replaces it with a staging copy.</summary>
    public IGradientSource Gradients { get; internal set; }

    /// <summary>Learning rate of the next step (set it per step for schedules).</summary>
    public double LearningRate { get; set; }

    /// <summary>Optimizer steps taken (skipped steps not counted), as PyTorch's state['step'].</summary>
    public long StepNumber { get; internal set; }

    /// <summary>Steps skipped because a gradient was NaN or infinite.</summary>
    public long SkippedStepCount { get; private set; }

    /// <summary>Where states rest: "host", "memory" or the NVMe file and engine.</summary>
    public string StateLocation => _store?.Description ?? "host";

    public IReadOnlyList<HostParameter> Parameters => _parameters;

    /// <summary>Builds the layout and a pool of its own (refusing a plan over the host budget), then fills the states.</summary>
    public static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options) =>
        Create(parameters, options, null, null);

    /// <summary>
    /// As <see cref="Create(IReadOnlyList{HostParameter}, PartitionedOptimizerOptions)"/>, renting from
    /// <paramref name="pool"/> (a training engine's pool planned with <see cref="PlanPool"/>; null: a pool of its own).
    /// </summary>
    public static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options, HostMemoryPool? pool) =>
        Create(parameters, options, pool, null);

    /// <summary>With a pool built by the caller that the optimizer then owns (the ZeRO-Infinity baseline's).</summary>
    internal static PartitionedOptimizer CreateOwningPool(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options, HostMemoryPool pool)
    {
        PartitionedOptimizer optimizer = Create(parameters, options, pool, null);
        optimizer._ownsPool = true;
        return optimizer;
    }

    /// <summary>With a given swap store (fault-injection tests).</summary>
    internal static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options,
        Func<IReadOnlyList<long>, ISwapStore>? storeFactory) => Create(parameters, options, null, storeFactory);

    private static PartitionedOptimizer Create(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options,
        HostMemoryPool? sharedPool, Func<IReadOnlyList<long>, ISwapStore>? storeFactory)
    {
        Validate(parameters, weightsNeeded: options.InitialMasters is null || options.WeightWriteBack is null, gradientsNeeded: options.Gradients is null);
        long subGroupElementCount = RoundSubGroupElementCount(options.SubGroupElementCount, options.WeightWriteBack?.WeightType);
        if (options.WeightWriteBack is { } writeBack && parameters.Any(p => p.WeightType != writeBack.WeightType))
            throw new ArgumentException($"Every parameter's weights must be {writeBack.WeightType} to go through the weight write-back.", nameof(parameters));
        CheckEncoding(parameters, options);
        IReadOnlyList<SubGroup> groups = (options.Partition ?? SubGroup.Partition(parameters.Select(p => p.ElementCount).ToList(), subGroupElementCount))
            .Select(g => g.Encoded(options.MasterEncoding)).ToList();
        if (options.Partition is not null && (groups.Any(g => g.ElementCount > subGroupElementCount)
            || (options.PartialPartition ? !IsPartOf(groups, parameters.Sum(p => p.ElementCount)) : groups.Sum(g => g.ElementCount) != parameters.Sum(p => p.ElementCount))))
            throw new ArgumentException(options.PartialPartition
                ? "The given part of a partition is not ascending, indexed 0..k-1 and inside the parameters in sub-groups of the rounded size."
                : "The given partition does not cover the parameters in sub-groups of the rounded size.", nameof(options));
        HostMemoryPool pool = sharedPool ?? HostMemoryPool.Create(PlanPool(groups, subGroupElementCount, options), options.HostBudgetByteCount, options.Allocator, options.HostRegistrar);
        ISwapStore? store = null;
        PartitionedOptimizer? optimizer = null;
        try
        {
            var extents = groups.Select(g => g.StateByteCount).ToList();
            store = storeFactory is not null ? storeFactory(extents) : options.Tier switch
            {
                StateTier.Host => null,
                StateTier.MemorySwap => new MemorySwapStore(extents),
                _ when options.Device is { } device => NvmeSwapStore.Create(device, extents),
                _ => NvmeSwapStore.Create(options.NvmeDirectory ?? throw new UserErrorException("States on NVMe need nvme_dir; set it to a directory on a fast local drive."),
                    extents, options.IoEngine, options.IoQueueDepth),
            };
            // InitialMasters is used here only; the optimizer does not keep the caller's callback (or what it captures)
            optimizer = new PartitionedOptimizer(parameters, options with { InitialMasters = null, CreationProgress = null }, groups, subGroupElementCount, pool, sharedPool is null, store);
            PartitionedOptimizer built = optimizer;
            if (options.StatesLoadedLater && options.Tier == StateTier.Nvme)
                return optimizer; // a resume writes every sub-group's states from its checkpoint next
            long created = 0;
            optimizer.FillStates((group, lease) =>
            {
                created += group.StateByteCount;
                options.CreationProgress?.Invoke(created);
                if (options.InitialMasters is { } initial)
                {
                    SubGroupStates.Clear(group, lease);
                    initial(group, lease.Buffer.Address);
                    SubGroupStates.Representable(parameters, group, lease);
                    SubGroupStates.Encode(parameters, group, lease);
                    return; // the weights are where they came from
                }
                SubGroupStates.Initialize(parameters, group, lease);
                if (built.Options.WeightWriteBack is not null)
                    built.WriteWeightsFromMaster(group, lease);
                SubGroupStates.Encode(parameters, group, lease);
            });
            optimizer.Options.WeightWriteBack?.Flush();
            return optimizer;
        }
        catch
        {
            if (optimizer is not null)
                optimizer.Dispose();
            else
            {
                store?.Dispose();
                if (sharedPool is null)
                    pool.Dispose();
            }
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
    /// one buffer of its exact size.
    /// </summary>
    public static PoolPlan PlanPool(IReadOnlyList<SubGroup> groups, long subGroupElementCount, PartitionedOptimizerOptions options)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PipelineBufferCount, 2);
        int fullCount = groups.Count(g => g.ElementCount == subGroupElementCount);
        bool hasTail = groups.Count > fullCount;
        var plan = new PoolPlan();
        int fullBuffers = options.Tier == StateTier.Host ? fullCount : Math.Min(options.PipelineBufferCount, fullCount);
        if (fullBuffers > 0)
            plan.Add(BufferKind.OptimizerStates, 12 * subGroupElementCount, fullBuffers);
        if (hasTail)
            plan.Add(BufferKind.OptimizerTailStates, 12 * groups[^1].ElementCount, 1); // whole fp32 masters fit whatever the encoding (a load converts in place)
        return plan;
    }

    /// <summary>Residual masters need bf16 weights, swapped states (nothing is saved in host memory), CPU updates and every sub-group.</summary>
    private static void CheckEncoding(IReadOnlyList<HostParameter> parameters, PartitionedOptimizerOptions options)
    {
        if (options.MasterEncoding != StateEncoding.Bf16Residual)
            return;
        string? why = parameters.Any(p => p.WeightType != ElementType.BFloat16) ? "every parameter's weights must be bf16"
            : options.Tier == StateTier.Host ? "the states must be swapped (in host memory there is no traffic to save)"
            : options.DeviceSubGroups?.Any(d => d) == true ? "device updates keep whole fp32 masters"
            : options.PartialPartition ? "a data-parallel rank's share keeps whole fp32 masters"
            : null;
        if (why is not null)
            throw new ArgumentException($"Residual masters ({nameof(PartitionedOptimizerOptions.MasterEncoding)} {StateEncoding.Bf16Residual}): {why}.", nameof(options));
    }

    private static void Validate(IReadOnlyList<HostParameter> parameters, bool weightsNeeded, bool gradientsNeeded)
    {
        var names = new HashSet<string>();
        foreach (HostParameter p in parameters)
        {
            if (!names.Add(p.Name))
                throw new ArgumentException($"Parameter '{p.Name}' is given twice.", nameof(parameters));
            if (p.ElementCount <= 0 || (weightsNeeded && p.Weight == 0) || (gradientsNeeded && p.Gradient == 0))
                throw new ArgumentException($"Parameter '{p.Name}' needs a positive element count and weight and gradient memory.", nameof(parameters));
            if (p.GradientType == ElementType.Float16)
                throw new ArgumentException($"Parameter '{p.Name}': gradients must be fp32 or bf16.", nameof(parameters));
        }
    }

    private bool IsTail(SubGroup group) => group.ElementCount != SubGroupElementCount;

    /// <summary>Sub-groups indexed 0..k-1, ascending and disjoint, inside [0, <paramref name="elementCount"/>).</summary>
    private static bool IsPartOf(IReadOnlyList<SubGroup> groups, long elementCount)
    {
        long end = 0;
        for (int i = 0; i < groups.Count; i++)
        {
            if (groups[i].Index != i || groups[i].FirstElement < end || groups[i].ElementCount <= 0)
                return false;
            end = groups[i].FirstElement + groups[i].ElementCount;
        }
        return end <= elementCount;
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
            fill(group, _resident[group.Index]!);
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
            visit(group, _resident[group.Index]!);
    }

    /// <summary>
    /// Rewrites <paramref name="group"/>'s low-precision weights from the whole fp32 masters in <paramref name="states"/>
    /// (into the write-back when there is one; the caller flushes it): at creation and after a load, before
    /// <see cref="SubGroupStates.Encode"/>.
    /// </summary>
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


    /// <summary>
    /// Turns <paramref name="group"/>'s states, loaded as residual masters ([m | v | residuals]), into the whole fp32
    /// masters this optimizer keeps, each completed by the weight it was saved beside: the group's weights as the model
    /// now holds them (loaded from the same checkpoint), read back from the weight file when they live there. bf16 and
    /// fp32 weights (an fp32 model loaded from bf16 weights holds them exactly); the weights are then rewritten from the
    /// masters, as after any load (the same bf16 values; fp32 weights take the whole master).
    /// </summary>
    internal unsafe void MastersFromResiduals(SubGroup group, HostLease states)
    {
        long n = group.ElementCount;
        var weights = (ushort*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(2 * n));
        try
        {
            if (Options.WeightWriteBack is { } writeBack)
            {
                var buffer = writeBack.Rent(group);
                writeBack.ReadCurrent(group);
                for (long i = 0; i < n; i++)
                    weights[i] = Bf16Of(writeBack.WeightType, buffer, i);
                SubGroupStates.Decode(group, states, weights);
                SubGroupStates.WriteGroupWeightsFromMaster(group, states, buffer, writeBack.WeightType);
                writeBack.Commit(group);
                return;
            }
            foreach (SubGroupSegment s in group.Segments)
                for (long i = 0; i < s.ElementCount; i++)
                    weights[s.GroupOffset + i] = Bf16Of(_parameters[s.Parameter].WeightType, _parameters[s.Parameter].Weight, s.ParameterOffset + i);
            SubGroupStates.Decode(group, states, weights);
            SubGroupStates.WriteWeightsFromMaster(_parameters, group, states);
        }
        finally
        {
            System.Runtime.InteropServices.NativeMemory.Free(weights);
        }
    }

    private static unsafe ushort Bf16Of(ElementType type, nint weights, long at) => type switch
    {
        ElementType.BFloat16 => ((ushort*)weights)[at],
        ElementType.Float32 => LowPrecision.ToBFloat16(((float*)weights)[at]),
        _ => throw new InvalidOperationException($"Residual masters are completed by bf16 weights, not {type}."),
    };

    /// <summary>Zeroes every parameter's gradient memory.</summary>
    public unsafe void ZeroGrad()
    {
        foreach (HostParameter p in _parameters)
            System.Runtime.InteropServices.NativeMemory.Clear((void*)p.Gradient, (nuint)(p.ElementCount * p.GradientType.ByteCount()));
    }

    public void Dispose()
    {
        _pipeline?.Quiesce();
        _fullRing?.Dispose();
        _tailRing?.Dispose();
        foreach (HostLease? lease in _resident)
            lease?.Dispose();
        Array.Clear(_resident);
        _store?.Dispose();
        _deviceAdamW?.Dispose();
        if (_ownsPool)
            Pool.Dispose();
    }
}
