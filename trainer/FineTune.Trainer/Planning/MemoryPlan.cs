using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.Gradients;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Planning;

/// <summary>
/// The one memory plan of a training engine, computed from the model's shape, its weight dtype and the
/// <see cref="TrainingOptions"/> alone (no weights loaded): the flat parameter layout, how each store is built, every
/// host pool class with its exact bytes (<see cref="Pool"/>), the NVMe files and the bytes each step moves. The engine
/// reserves exactly <see cref="Pool"/> and builds its stores from these options; `finetune plan` prints the same
/// figures; a test holds the two equal. Immutable.
/// </summary>
public sealed class MemoryPlan
{
    private MemoryPlan(LlamaConfig config, DType weightDType, TrainingOptions options)
    {
        Config = config;
        WeightDType = weightDType;
        Options = options;
        ElementType weightType = ElementTypeExtensions.FromDType(weightDType);
        Layout = LlamaLayout.For(config, weightType, options.SubGroupElementCount);
        Store = new ParameterStoreOptions
        {
            Tier = options.ParameterTier == ParameterTier.Nvme ? WeightTier.Nvme : WeightTier.Resident,
            LayerSlots = options.ParameterSlots,
        };
        Activations = ActivationOptions(config, weightDType, options);
        Optimizer = new PartitionedOptimizerOptions
        {
            AdamW = options.AdamW,
            SubGroupElementCount = Layout.SubGroupElementCount,
            Tier = options.OptimizerTier,
            NvmeDirectory = options.NvmeDirectory,
            IoEngine = options.IoEngine,
            MaxDegreeOfParallelism = options.OptimizerThreads,
        };
        var pool = new PoolPlan();
        ParameterStore.AddToPlan(pool, Layout, Store);
        GradientAccumulators.AddToPlan(pool, Layout);
        if (Activations is not null)
            ActivationStore.AddToPlan(pool, Activations);
        pool.AddAll(PartitionedOptimizer.PlanPool(Layout.SubGroups, Layout.SubGroupElementCount, Optimizer));
        Pool = pool;
    }

    public static MemoryPlan For(LlamaConfig config, DType weightDType, TrainingOptions options) => new(config, weightDType, options);

    public LlamaConfig Config { get; }

    public DType WeightDType { get; }

    public TrainingOptions Options { get; }

    public ParameterLayout Layout { get; }

    public ParameterStoreOptions Store { get; }

    /// <summary>The activation store's shape; null for a model without decoder layers.</summary>
    public ActivationStoreOptions? Activations { get; }

    /// <summary>The optimizer's options (the engine adds the shared pool, drive and initial masters).</summary>
    public PartitionedOptimizerOptions Optimizer { get; }

    /// <summary>Every host buffer class the engine's pool holds.</summary>
    public PoolPlan Pool { get; }

    /// <summary>Bytes the pool reserves (what host_gb is checked against).</summary>
    public long PoolByteCount => Pool.ReservedByteCount(PoolAllocatorKind.Exact);

    /// <summary>Bytes of the optimizer's classes of <see cref="Pool"/>.</summary>
    public long OptimizerPoolByteCount => Pool.ReservedByteCount(BufferKind.OptimizerStates) + Pool.ReservedByteCount(BufferKind.OptimizerTailStates);

    public bool StatesOnNvme => Options.OptimizerTier == StateTier.Nvme;

    public bool WeightsOnNvme => Store.Tier == WeightTier.Nvme;

    public int NvmeActivationLayers => Activations?.NvmeCheckpointCount ?? 0;

    /// <summary>True when some store needs nvme_dir.</summary>
    public bool UsesNvme => StatesOnNvme || WeightsOnNvme || NvmeActivationLayers > 0;

    public long WeightByteCount => Layout.ElementCount * Layout.WeightType.ByteCount();

    public long StateByteCount => 12 * Layout.ElementCount;

    /// <summary>Bytes of one activation checkpoint extent on NVMe (sector-rounded).</summary>
    public long ActivationExtentByteCount => Activations is null ? 0 : AlignedBuffer.RoundUpToSector(Activations.CheckpointByteCount);

    /// <summary>Bytes the plan's files occupy in nvme_dir: weights, optimizer states and activation checkpoints, each page-rounded.</summary>
    public long NvmeFileByteCount =>
        (WeightsOnNvme ? HostAlignment.RoundUpToPage(WeightByteCount) : 0)
        + (StatesOnNvme ? Layout.SubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0)
        + NvmeActivationLayers * ActivationExtentByteCount;

    /// <summary>NVMe bytes one optimizer step moves, by kind, for <paramref name="microBatches"/> micro-batches per step.</summary>
    public NvmeTraffic TrafficPerStep(int microBatches)
    {
        long states = StatesOnNvme ? Layout.SubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0;
        long activations = (long)NvmeActivationLayers * ActivationExtentByteCount * microBatches;
        // every stage is read for forward and again for backward in each micro-batch; each sub-group written once
        long weightReads = WeightsOnNvme ? 2L * microBatches * Layout.Ranges.Sum(r => WeightSlots.WindowByteCount(r, Layout.WeightType.ByteCount())) : 0;
        long weightWrites = WeightsOnNvme ? WeightByteCount : 0;
        return new NvmeTraffic(states, states, weightReads, weightWrites, activations, activations);
    }

    private static ActivationStoreOptions? ActivationOptions(LlamaConfig config, DType dtype, TrainingOptions options)
    {
        int layers = config.LayerCount;
        if (layers == 0)
            return null;
        int nvme = options.NvmeActivationLayers < 0 ? layers : Math.Min(options.NvmeActivationLayers, layers);
        return new ActivationStoreOptions
        {
            CheckpointCount = layers,
            CheckpointByteCount = (long)options.MicroBatchSize * options.SequenceLength * config.HiddenSize * dtype.ElementByteCount(),
            NvmeCheckpointCount = nvme,
            NvmeDirectory = options.NvmeDirectory,
            StagingBufferCount = options.ActivationStagingBuffers,
            IoEngine = options.IoEngine,
        };
    }
}
