using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>Options of <see cref="PartitionedOptimizer"/>; defaults follow PyTorch's AdamW and DeepSpeed's pipeline.</summary>
public sealed record PartitionedOptimizerOptions
{
    public AdamWOptions AdamW { get; init; } = new();

    /// <summary>
    /// Elements per sub-group (the unit of swapping and of device/CPU assignment). Rounded up to 1,024, and with a
    /// <see cref="WeightWriteBack"/> to a whole number of 4 KiB pages of weights (<see cref="PartitionedOptimizer.RoundSubGroupElementCount"/>).
    /// </summary>
    public long SubGroupElementCount { get; init; } = 100_000_000;

    public StateTier Tier { get; init; } = StateTier.Host;

    /// <summary>Directory of the swap file (Tier Nvme) when no <see cref="Device"/> is given.</summary>
    public string? NvmeDirectory { get; init; }

    /// <summary>The drive shared with the run's other stores (Tier Nvme); null: a device of its own on <see cref="NvmeDirectory"/>.</summary>
    public FineTune.Offload.Storage.NvmeDevice? Device { get; init; }

    /// <summary>Host bytes the pool may reserve (host_gb); the optimizer refuses to build past it.</summary>
    public long HostBudgetByteCount { get; init; } = long.MaxValue;

    /// <summary>Pipeline buffers of the full sub-group size (read k+1, update k, write k-1 needs 3).</summary>
    public int PipelineBufferCount { get; init; } = 3;

    /// <summary>Exact pool, or the power-of-two baseline allocator (see offload/Bench/ZeroInfinityBaseline for the whole baseline).</summary>
    public PoolAllocatorKind Allocator { get; init; } = PoolAllocatorKind.Exact;

    public IoEngineKind IoEngine { get; init; } = IoEngineKind.Auto;

    /// <summary>CRC32C every swap extent on write and verify it on read (costs one extra pass over the states).</summary>
    public bool VerifySwapIntegrity { get; init; }

    public int IoQueueDepth { get; init; } = IoEngineFactory.DefaultQueueDepth;

    /// <summary>Registers the pool with CUDA when a device is present; null on CPU-only machines.</summary>
    public IHostMemoryRegistrar? HostRegistrar { get; init; }

    /// <summary>
    /// Sub-groups updated by <see cref="DeviceAdamW"/> on <see cref="UpdateDevice"/> instead of the CPU kernel
    /// (the interleave planner's InterleavePlan.OnDevice); null or all false: everything on the CPU.
    /// </summary>
    public IReadOnlyList<bool>? DeviceSubGroups { get; init; }

    /// <summary>Device of <see cref="DeviceSubGroups"/>' updates (cuda:0 on a GPU machine; cpu runs the same path for tests).</summary>
    public FineTune.Torch.Device UpdateDevice { get; init; } = FineTune.Torch.Device.Cpu;

    /// <summary>
    /// Where updated low-precision weights go when the parameters' memory is not resident (parameter offload);
    /// null: into <see cref="HostParameter.Weight"/>.
    /// </summary>
    public IWeightWriteBack? WeightWriteBack { get; init; }

    /// <summary>
    /// Fills a sub-group's fp32 masters (<c>group.ElementCount</c> floats at the given address) at creation instead
    /// of reading <see cref="HostParameter.Weight"/>; with a <see cref="WeightWriteBack"/> the weights are then taken
    /// to be in place already (a weight file written from the checkpoint), and Weight may be 0.
    /// </summary>
    public Action<SubGroup, nint>? InitialMasters { get; init; }

    /// <summary>
    /// States on NVMe only: the caller loads every sub-group's states right after creation (a resume), so creation
    /// writes none (at 1.1B parameters, 13 GB not written and then overwritten).
    /// </summary>
    public bool StatesLoadedLater { get; init; }

    /// <summary>Told the bytes of states written so far while the optimizer creates them (used at creation only, not kept).</summary>
    public Action<long>? CreationProgress { get; init; }

    /// <summary>
    /// The sub-groups to use (a training engine's layout, whose segments also split at an edge weight's row blocks);
    /// null: <see cref="SubGroup.Partition(IReadOnlyList{long}, long)"/> of the parameters at the rounded size.
    /// </summary>
    public IReadOnlyList<SubGroup>? Partition { get; init; }

    /// <summary>
    /// True when <see cref="Partition"/> holds only some sub-groups of the flat space, re-indexed 0..k-1 (a data-parallel
    /// rank's share, DataParallel.RankPartition.Owned): the optimizer keeps states for those alone and other ranks'
    /// optimizers hold the rest; its gradient source and weight write-back must then be the data-parallel ones.
    /// </summary>
    public bool PartialPartition { get; init; }

    /// <summary>Where the optimizer reads gradients; null: each <see cref="HostParameter.Gradient"/> buffer in place.</summary>
    public IGradientSource? Gradients { get; init; }

    /// <summary>
    /// How the states are stored: whole fp32 masters, or (bf16 weights, states swapped, CPU updates, every sub-group
    /// held) each master as its bf16 weight plus a 16-bit residual (<see cref="Adam.MasterResidual"/>), 10 bytes per
    /// element instead of 12 each way. The update then needs each sub-group's weights as they were before the step:
    /// from the gradient source (<see cref="IGradientSource.PreviousWeights"/>), else read from the write-back's file,
    /// else the parameters' own memory. The bits are the same either way.
    /// </summary>
    public StateEncoding MasterEncoding { get; init; } = StateEncoding.Float32Master;

    /// <summary>Threads of the CPU update; -1 uses every core.</summary>
    public int MaxDegreeOfParallelism { get; init; } = -1;
}
