using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Planning;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// The memory plan of an <see cref="AdapterEngine"/>, from the model's shape, its dtype, the LoRA config and the
/// <see cref="TrainingOptions"/> alone (no weights): the base's flat layout in a read-only store (resident, or on
/// NVMe streamed through the layer slots; no write-back, no gradient accumulators, no optimizer state), the
/// activation store, and the optimizer over the trained parameters only (adapters in adapter order, then the
/// trainable extras), with every host pool class and the bytes each step moves. The engine reserves exactly
/// <see cref="Pool"/>; `finetune plan` prints these figures. The trained tensors themselves (weights and fp32
/// gradients, <see cref="TrainedTensorByteCount"/>) are libtorch tensors beside the pool. Immutable.
/// </summary>
public sealed class AdapterPlan
{
    private AdapterPlan(LlamaConfig config, DType weightDType, LoraConfig lora, TrainingOptions options)
    {
        lora.Validate();
        Config = config;
        WeightDType = weightDType;
        Lora = lora;
        Options = options;
        Layout = LlamaLayout.For(config, ElementTypeExtensions.FromDType(weightDType), options.SubGroupElementCount);
        Store = new ParameterStoreOptions
        {
            Tier = options.ParameterTier == ParameterTier.Nvme ? WeightTier.Nvme : WeightTier.Resident,
            LayerSlots = options.ParameterSlots,
            ReadOnly = true,
        };
        Activations = config.LayerCount == 0 ? null : new ActivationStoreOptions
        {
            CheckpointCount = config.LayerCount,
            CheckpointByteCount = (long)options.MicroBatchSize * options.SequenceLength * config.HiddenSize * weightDType.ElementByteCount(),
            NvmeCheckpointCount = options.NvmeActivationLayers < 0 ? config.LayerCount : Math.Min(options.NvmeActivationLayers, config.LayerCount),
            NvmeDirectory = options.NvmeDirectory,
            StagingBufferCount = options.ActivationStagingBuffers,
            IoEngine = options.IoEngine,
        };
        Trained = TrainedShapes(config, weightDType, lora);
        Optimizer = new PartitionedOptimizerOptions
        {
            AdamW = options.AdamW,
            SubGroupElementCount = PartitionedOptimizer.RoundSubGroupElementCount(options.SubGroupElementCount),
            Tier = options.OptimizerTier,
            NvmeDirectory = options.NvmeDirectory,
            IoEngine = options.IoEngine,
            MaxDegreeOfParallelism = options.OptimizerThreads,
        };
        SubGroups = SubGroup.Partition(Trained.Select(t => t.ElementCount).ToList(), Optimizer.SubGroupElementCount);
        var pool = new PoolPlan();
        ParameterStore.AddToPlan(pool, Layout, Store);
        if (Activations is not null)
            ActivationStore.AddToPlan(pool, Activations);
        pool.AddAll(PartitionedOptimizer.PlanPool(SubGroups, Optimizer.SubGroupElementCount, Optimizer));
        Pool = pool;
    }

    public static AdapterPlan For(LlamaConfig config, DType weightDType, LoraConfig lora, TrainingOptions options) => new(config, weightDType, lora, options);

    public LlamaConfig Config { get; }

    public DType WeightDType { get; }

    public LoraConfig Lora { get; }

    public TrainingOptions Options { get; }

    /// <summary>The base's layout (every parameter, frozen or not: the extras' base copies stay in the store, unused).</summary>
    public ParameterLayout Layout { get; }

    /// <summary>The base store's options: read-only, resident or NVMe.</summary>
    public ParameterStoreOptions Store { get; }

    public ActivationStoreOptions? Activations { get; }

    /// <summary>The trained tensors in optimizer order: (name, elements, weight type) of every A, B, then the extras.</summary>
    public IReadOnlyList<(string Name, long ElementCount, ElementType WeightType)> Trained { get; }

    public PartitionedOptimizerOptions Optimizer { get; }

    /// <summary>The optimizer's sub-groups over <see cref="Trained"/>.</summary>
    public IReadOnlyList<SubGroup> SubGroups { get; }

    /// <summary>Every host buffer class the engine's pool holds.</summary>
    public PoolPlan Pool { get; }

    public long PoolByteCount => Pool.ReservedByteCount(PoolAllocatorKind.Exact);

    public bool BaseOnNvme => Store.Tier == WeightTier.Nvme;

    public bool StatesOnNvme => Options.OptimizerTier == StateTier.Nvme;

    public int NvmeActivationLayers => Activations?.NvmeCheckpointCount ?? 0;

    public bool UsesNvme => BaseOnNvme || StatesOnNvme || NvmeActivationLayers > 0;

    public long TrainedElementCount => Trained.Sum(t => t.ElementCount);

    /// <summary>Trained weights in their dtype plus their fp32 gradient buffers (resident tensors, not pooled).</summary>
    public long TrainedTensorByteCount => Trained.Sum(t => t.ElementCount * (t.WeightType.ByteCount() + 4L));

    /// <summary>fp32 master, Adam m and v of the trained parameters.</summary>
    public long StateByteCount => 12 * TrainedElementCount;

    /// <summary>Bytes of the frozen base in its dtype.</summary>
    public long BaseByteCount => Layout.ElementCount * Layout.WeightType.ByteCount();

    /// <summary>Host bytes the engine holds: its pool and the trained tensors (what host_gb is checked against).</summary>
    public long HostByteCount => PoolByteCount + TrainedTensorByteCount;

    public long ActivationExtentByteCount => Activations is null ? 0 : AlignedBuffer.RoundUpToSector(Activations.CheckpointByteCount);

    /// <summary>Bytes the plan's files occupy in nvme_dir: the base, the trained parameters' states, activation checkpoints.</summary>
    public long NvmeFileByteCount =>
        (BaseOnNvme ? HostAlignment.RoundUpToPage(BaseByteCount) : 0)
        + (StatesOnNvme ? SubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0)
        + NvmeActivationLayers * ActivationExtentByteCount;

    /// <summary>
    /// NVMe bytes of one optimizer step for <paramref name="microBatches"/> micro-batches: the streamed base read for
    /// every stage's forward and again for its backward per micro-batch (an upper bound: a stage still in a slot when
    /// backward turns is not read again), never written; the trained states and activation checkpoints as in full
    /// fine-tuning.
    /// </summary>
    public NvmeTraffic TrafficPerStep(int microBatches)
    {
        long states = StatesOnNvme ? SubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0;
        long activations = (long)NvmeActivationLayers * ActivationExtentByteCount * microBatches;
        long baseReads = BaseOnNvme ? 2L * microBatches * Layout.Ranges.Sum(r => WeightSlots.WindowByteCount(r, Layout.WeightType.ByteCount())) : 0;
        return new NvmeTraffic(states, states, baseReads, 0, activations, activations);
    }

    /// <summary>(name, elements, type) of what LoRA trains, in the order <see cref="TrainedParameters"/> hands them to the optimizer.</summary>
    private static List<(string, long, ElementType)> TrainedShapes(LlamaConfig config, DType weightDType, LoraConfig lora)
    {
        var trained = new List<(string, long, ElementType)>();
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            foreach (string module in lora.Targets)
            {
                var (inFeatures, outFeatures) = LoraTargets.Features(config, module);
                string name = LoraTargets.ModuleName(layer, module);
                trained.Add((name + ".lora_A.weight", lora.Rank * inFeatures, ElementType.Float32));
                trained.Add((name + ".lora_B.weight", outFeatures * lora.Rank, ElementType.Float32));
            }
        }
        var specs = LlamaTensorNames.All(config).ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (string name in LoraTrainableModules.ParameterNames(config, lora.Trainable))
            trained.Add((name, specs[name].ElementCount, ElementTypeExtensions.FromDType(weightDType)));
        return trained;
    }
}
