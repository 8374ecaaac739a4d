using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Adam;
using FineTune.Offload.DataParallel;
using FineTune.Offload.Gradients;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Training;
using FineTune.Trainer.Training.Gradients;

namespace FineTune.Trainer.Planning;

/// <summary>
/// The one memory plan of a training engine, computed from the model's shape, its weight dtype and the
/// <see cref="TrainingOptions"/> alone (no weights loaded): the flat parameter layout, how each store is built, every
/// host pool class with its exact bytes (<see cref="Pool"/>), the NVMe files and the bytes each step moves. The engine
/// reserves exactly <see cref="Pool"/> and builds its stores from these options; `finetune plan` prints the same
/// figures; a test holds the two equal. With a data-parallel group in the options the plan is one rank's: its
/// <see cref="Partition"/> of the sub-groups, the optimizer pool and NVMe states for the owned ones only, fp32
/// accumulators for the whole model and the two stripe buffers the collectives move through. Immutable.
/// </summary>
public sealed class MemoryPlan
{
    private MemoryPlan(LlamaConfig config, DType weightDType, TrainingOptions options)
    {
        Config = config;
        WeightDType = weightDType;
        Options = options;
        ElementType weightType = ElementTypeExtensions.FromDType(weightDType);
        Layout = LlamaLayout.For(config, weightType, options.SubGroupElementCount, options.EdgeBlockElementCount);
        Store = new ParameterStoreOptions
        {
            Tier = options.ParameterTier == ParameterTier.Nvme ? WeightTier.Nvme : WeightTier.Resident,
            LayerSlots = options.ParameterSlots,
        };
        KeptLayers = KeptLayerCount(config, options, Store.Tier);
        SpilledLayers = SpilledLayerCount(config, options, Store.Tier, KeptLayers);
        LayerGraphByteCount = GraphByteCount(config, options.MicroBatchSize, options.SequenceLength, weightDType.ElementByteCount());
        Activations = ActivationOptions(config, weightDType, options, KeptLayers + SpilledLayers);
        Partition = options.DataParallelGroup is { WorldSize: > 1 } group ? new RankPartition(Layout.SubGroups, group.Rank, group.WorldSize) : null;
        Gradients = GradientTierFor(options, Layout.GradientByteCount);
        SplitElement = Gradients == GradientTier.Consumed && options.UpdateUnderForwardElementCount > 0
            ? Layout.SubGroups.Select(g => g.FirstElement).Where(f => f > 0 && f >= Layout.ElementCount - options.UpdateUnderForwardElementCount).Cast<long?>().FirstOrDefault()
            : null;
        MasterEncoding = options.ResidualMasters && options.OptimizerTier != StateTier.Host && weightType == ElementType.BFloat16 && Partition is null
            ? StateEncoding.Bf16Residual : StateEncoding.Float32Master;
        StateSubGroups = OwnedSubGroups.Select(g => g.Encoded(MasterEncoding)).ToList();
        Optimizer = new PartitionedOptimizerOptions
        {
            Partition = OwnedSubGroups,
            MasterEncoding = MasterEncoding,
            PartialPartition = Partition is not null,
            AdamW = options.AdamW,
            SubGroupElementCount = Layout.SubGroupElementCount,
            Tier = options.OptimizerTier,
            NvmeDirectory = options.NvmeDirectory,
            IoEngine = options.IoEngine,
            MaxDegreeOfParallelism = options.OptimizerThreads,
        };
        var pool = new PoolPlan();
        ParameterStore.AddToPlan(pool, Layout, Store);
        if (Gradients == GradientTier.HostAccumulators)
            GradientAccumulators.AddToPlan(pool, Layout);
        if (Activations is not null)
            ActivationStore.AddToPlan(pool, Activations);
        _tied = Gradients is (GradientTier.Consumed or GradientTier.Nvme)
            ? Enumerable.Range(0, Layout.Stages.Count).Select(Layout.Blocks).FirstOrDefault(b => b is { Count: > 0 } && SharedParameters.Contains(b[0].Parameter))
            : null;
        DefersTiedHeadGradient = _tied is not null && (options.DeferTiedHeadGradient ?? (long)options.MicroBatchSize * options.SequenceLength <= config.HiddenSize);
        TiedBlocks = _tied is not null && !DefersTiedHeadGradient && options.NvmeDirectory is not null && (options.OptimizerTier == StateTier.Nvme || Store.Tier == WeightTier.Nvme)
            ? _tied : null;
        if (TiedBlocks is not null)
            pool.Add(BufferKind.TiedGradientStaging, TiedGradientSpill.StagingByteCount(TiedBlocks, TiedRowElementCount, weightDType), 1);
        GradientPieces = Gradients == GradientTier.Nvme ? PiecesOf(Layout, SharedParameters.ToHashSet()) : [];
        if (Gradients == GradientTier.Nvme)
        {
            pool.Add(BufferKind.GradientSpillStaging, SpilledGradients.StagingSlotByteCount(GradientPieces), SpilledGradients.StagingBufferCount);
            pool.Add(BufferKind.GradientSpillReads, SpilledGradients.ReadSlotByteCount(Layout, GradientPieces), SpilledGradients.ReadSlotCount);
        }
        pool.AddAll(PartitionedOptimizer.PlanPool(OwnedSubGroups, Layout.SubGroupElementCount, Optimizer));
        if (Partition is not null)
            StripeBuffers.AddToPlan(pool, Partition);
        Pool = pool;
    }

    public static MemoryPlan For(LlamaConfig config, DType weightDType, TrainingOptions options) => new(config, weightDType, options);

    /// <summary>
    /// Gradients on NVMe: the final pieces backward makes, in the spill file's order — each parameter whole, or in the
    /// row blocks of its stage; autograd's dtype (the weights'), fp32 for a weight two stages use (their sum).
    /// </summary>
    public IReadOnlyList<GradientPiece> GradientPieces { get; }

    /// <summary>Bytes of the gradient spill file (0 without one); written and read once per step.</summary>
    public long GradientFileByteCount => SpilledGradients.FileByteCount(GradientPieces);

    private static List<GradientPiece> PiecesOf(ParameterLayout layout, ISet<int> shared)
    {
        var blocks = Enumerable.Range(0, layout.Stages.Count).Select(layout.Blocks).Where(b => b is { Count: > 0 }).SelectMany(b => b!).DistinctBy(b => (b.Parameter, b.FirstRow)).ToLookup(b => b.Parameter); // a tied weight's blocks appear in both its stages
        var pieces = new List<GradientPiece>();
        for (int p = 0; p < layout.Parameters.Count; p++)
        {
            ElementType type = shared.Contains(p) ? ElementType.Float32 : layout.WeightType;
            long rowElements = layout.Parameters[p].ElementCount / Math.Max(1, layout.Parameters[p].Shape[0]);
            if (blocks[p].Any())
                pieces.AddRange(blocks[p].Select(b => new GradientPiece(p, b.FirstRow * rowElements, b.Rows * rowElements, type)));
            else
                pieces.Add(new GradientPiece(p, 0, layout.Parameters[p].ElementCount, type));
        }
        return pieces;
    }

    /// <summary>Parameters two stages use (a tied embedding and LM head).</summary>
    private IEnumerable<int> SharedParameters => Layout.Stages.SelectMany(s => s.Uses.Except(s.Owned)).Distinct();

    /// <summary>
    /// Consumed gradients of a tied weight computed in row blocks, with NVMe in use: the LM head's contribution waits on
    /// NVMe (<see cref="TiedGradientSpill"/>), block by block, instead of whole in host memory; null otherwise.
    /// </summary>
    public IReadOnlyList<LayoutBlock>? TiedBlocks { get; }

    /// <summary>
    /// Consumed gradients of a tied weight computed in row blocks (<see cref="TrainingOptions.DeferTiedHeadGradient"/>):
    /// the LM head's share of each block's gradient is made at the embedding's backward from the logits' gradient, kept
    /// until then, so the whole head gradient never waits anywhere (no NVMe traffic, one block alive at a time).
    /// </summary>
    public bool DefersTiedHeadGradient { get; }

    /// <summary>The row blocks of a tied weight whose gradients are consumed; null otherwise.</summary>
    private readonly IReadOnlyList<LayoutBlock>? _tied;

    /// <summary>Host bytes the deferral keeps through backward: the logits' gradient and the head's input (tokens x (vocabulary + hidden)).</summary>
    public long DeferredTiedHeadByteCount => !DefersTiedHeadGradient ? 0
        : (long)Options.MicroBatchSize * Options.SequenceLength * (Config.VocabSize + Config.HiddenSize) * WeightDType.ElementByteCount();

    /// <summary>Elements per row of the tied weight (its hidden size).</summary>
    public long TiedRowElementCount => TiedBlocks is null ? 0 : TiedRowElementCountOf(TiedBlocks[0]);

    private long TiedRowElementCountOf(LayoutBlock block) => Layout.Parameters[block.Parameter].ElementCount / Layout.Parameters[block.Parameter].Shape[0];

    /// <summary>Bytes of the tied gradient's NVMe file (0 without one); written and read once per step.</summary>
    public long TiedGradientFileByteCount => TiedBlocks is null ? 0 : TiedGradientSpill.FileByteCount(TiedBlocks, TiedRowElementCount, WeightDType);

    public LlamaConfig Config { get; }

    public DType WeightDType { get; }

    public TrainingOptions Options { get; }

    public ParameterLayout Layout { get; }

    public ParameterStoreOptions Store { get; }

    /// <summary>This rank's ZeRO share of the sub-groups; null for one process.</summary>
    public RankPartition? Partition { get; }

    /// <summary>The sub-groups whose optimizer state this engine holds: all of them, or this rank's share.</summary>
    public IReadOnlyList<SubGroup> OwnedSubGroups => Partition?.Owned ?? Layout.SubGroups;

    /// <summary>
    /// How the optimizer stores the fp32 masters: with bf16 weights and the states swapped on one process, as the bf16
    /// weight plus a 16-bit residual (10 bytes of states per parameter each way instead of 12; the same bits).
    /// </summary>
    public StateEncoding MasterEncoding { get; }

    /// <summary><see cref="OwnedSubGroups"/> as the optimizer lays out their states (<see cref="MasterEncoding"/>).</summary>
    public IReadOnlyList<SubGroup> StateSubGroups { get; }

    /// <summary>
    /// Residual masters with the weights on NVMe and the gradients consumed: each published gradient carries a copy of
    /// the weights backward used, so the update reads no weight back (a gradient held for the pass under the next
    /// forward carries its weights only with <see cref="CarriesHeldWeights"/>; else that pass reads them back).
    /// </summary>
    public bool CarriesWeights => MasterEncoding == StateEncoding.Bf16Residual && WeightsOnNvme && Gradients == GradientTier.Consumed;

    /// <summary>The held gradients carry their weights too (<see cref="TrainingOptions.CarryHeldWeights"/>): the pass under the next forward reads none back.</summary>
    public bool CarriesHeldWeights => CarriesWeights && Options.CarryHeldWeights && HeldGradientByteCount > 0;

    /// <summary>Bytes one published piece of <paramref name="parameter"/> holds: its gradient, and the weights it carries.</summary>
    public long PublishedByteCount(int parameter) =>
        PublishedGradientByteCount(parameter) + (CarriesWeights ? Layout.Parameters[parameter].ElementCount * (long)WeightDType.ElementByteCount() : 0);

    /// <summary>
    /// Bytes of weights the update reads back per step (residual masters whose previous weights nobody carried): the
    /// held sub-groups when weights are carried, every sub-group when they are not and the weights are on NVMe.
    /// </summary>
    public long UpdateWeightReadByteCount
    {
        get
        {
            if (MasterEncoding != StateEncoding.Bf16Residual || !WeightsOnNvme)
                return 0;
            long from = 0;
            if (CarriesWeights)
            {
                if (HeldGradientByteCount == 0 || CarriesHeldWeights || SplitElement is not long split)
                    return 0;
                from = Enumerable.Range(0, Layout.Parameters.Count).Where(p => Layout.FlatOffset(p) + Layout.Parameters[p].ElementCount > split).Min(Layout.FlatOffset);
            }
            return StateSubGroups.Where(g => g.FirstElement + g.ElementCount > from).Sum(g => HostAlignment.RoundUpToPage(g.ElementCount * (long)WeightDType.ElementByteCount()));
        }
    }

    /// <summary>Where gradients go: host accumulators (4 bytes a parameter in the pool), or consumed by the overlapped update.</summary>
    public GradientTier Gradients { get; }

    /// <summary>
    /// Where the update's pass under the next forward starts (a sub-group's first element; <see cref="TrainingOptions.UpdateUnderForwardElementCount"/>),
    /// or null when the whole update follows backward.
    /// </summary>
    public long? SplitElement { get; }

    /// <summary>The gradients held from backward to the pass under the next forward: every parameter reaching past <see cref="SplitElement"/>, whole.</summary>
    public long HeldGradientByteCount => SplitElement is not long split || Gradients != GradientTier.Consumed || !OverlapsBackward ? 0
        : Enumerable.Range(0, Layout.Parameters.Count).Where(p => Layout.FlatOffset(p) + Layout.Parameters[p].ElementCount > split).Sum(PublishedGradientByteCount);

    /// <summary>Host bytes held from backward to the pass under the next forward: the gradients, and their weights when they carry them.</summary>
    public long HeldByteCount => HeldGradientByteCount * (CarriesHeldWeights ? 2 : 1);

    /// <summary>Pool bytes of gradients (0 when consumed: no per-parameter memory).</summary>
    public long GradientPoolByteCount => Pool.ReservedByteCount(BufferKind.GradientAccumulators);

    /// <summary>
    /// Consumed gradients: the bound on gradient bytes alive at once, two stages' or two sub-groups' worth, whichever is
    /// more (a sub-group is updated once every gradient in it is final; backward waits beyond the bound), plus a weight
    /// two stages use (a tied LM head's contribution, as autograd made it) unless it waits on NVMe. Not pooled: autograd's
    /// own tensors. The weights a gradient carries (<see cref="CarriesWeights"/>) count with it.
    /// </summary>
    public long ConsumedGradientBoundByteCount => Gradients is not (GradientTier.Consumed or GradientTier.Nvme) ? 0
        : OutstandingGradientBoundByteCount
          + (TiedBlocks is not null ? 0
              : DefersTiedHeadGradient ? DeferredTiedHeadByteCount + _tied!.Max(b => b.Rows) * TiedRowElementCountOf(_tied![0]) * WeightDType.ElementByteCount() // one block's share as made
              : SharedParameters.Sum(p => Layout.Parameters[p].ElementCount * (long)WeightDType.ElementByteCount()));

    /// <summary>
    /// The part of <see cref="ConsumedGradientBoundByteCount"/> that published gradients (and the weights they carry)
    /// may fill before backward waits for the optimizer: what the engine's <see cref="StreamedGradients"/> is held to.
    /// A tied head's share waiting for its owner lies outside it.
    /// </summary>
    public long OutstandingGradientBoundByteCount => Gradients is not (GradientTier.Consumed or GradientTier.Nvme) ? 0
        : 2 * Math.Max(Enumerable.Range(0, Layout.Stages.Count).Max(StagePublishedByteCount),
              Layout.SubGroups.Max(g => g.Segments.Select(s => s.Parameter).Distinct().Sum(p => Blocked(p) ? 0 : PublishedByteCount(p))));

    /// <summary>What one stage publishes at once: its owned gradients, or one row block of a blocked edge weight.</summary>
    private long StagePublishedByteCount(int stage) => Layout.Blocks(stage) is { } blocks
        ? blocks.Max(b => PublishedByteCount(b.Parameter) / Layout.Parameters[b.Parameter].Shape[0] * b.Rows)
        : Layout.Stages[stage].Owned.Sum(PublishedByteCount);

    private bool Blocked(int parameter) => Enumerable.Range(0, Layout.Stages.Count).Any(s => Layout.Blocks(s)?.Any(b => b.Parameter == parameter) == true);

    /// <summary>
    /// Bytes of <paramref name="parameter"/>'s final gradient as consumed: autograd's own (the weights' dtype), or an
    /// fp32 sum for a weight two stages use.
    /// </summary>
    public long PublishedGradientByteCount(int parameter) =>
        Layout.Parameters[parameter].ElementCount * (Layout.Stages.Count(s => s.Uses.Contains(parameter)) > 1 ? 4 : WeightDType.ElementByteCount());

    /// <summary>True when the update runs during backward (no clipping, no loss scaling).</summary>
    public bool OverlapsBackward => Options.OverlapOptimizerWithBackward && Options.AdamW.MaxGradNorm <= 0 && !HasLossScaler(Options) && Partition is null;

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
    public bool UsesNvme => StatesOnNvme || WeightsOnNvme || NvmeActivationLayers > 0 || SpilledLayers > 0;

    public long WeightByteCount => Layout.ElementCount * Layout.WeightType.ByteCount();

    /// <summary>Bytes of the optimizer states this engine holds (this rank's share when data-parallel).</summary>
    public long StateByteCount => StateSubGroups.Sum(g => g.StateByteCount);

    /// <summary>Bytes of one activation checkpoint extent on NVMe (sector-rounded).</summary>
    public long ActivationExtentByteCount => Activations is null ? 0 : AlignedBuffer.RoundUpToSector(Activations.CheckpointByteCount);

    /// <summary>Bytes the plan's files occupy in nvme_dir: weights, optimizer states and activation checkpoints, each page-rounded.</summary>
    public long NvmeFileByteCount =>
        (WeightsOnNvme ? HostAlignment.RoundUpToPage(WeightByteCount) : 0)
        + (StatesOnNvme ? StateSubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0)
        + NvmeActivationLayers * ActivationExtentByteCount + SpillFileByteCount
        + TiedGradientFileByteCount + GradientFileByteCount;

    /// <summary>NVMe bytes one optimizer step moves, by kind, for <paramref name="microBatches"/> micro-batches per step.</summary>
    public NvmeTraffic TrafficPerStep(int microBatches)
    {
        long states = StatesOnNvme ? StateSubGroups.Sum(g => HostAlignment.RoundUpToPage(g.StateByteCount)) : 0;
        long activations = ((long)NvmeActivationLayers * ActivationExtentByteCount + SpilledLayers * LayerGraphByteCount) * microBatches;
        // every stage is read for forward and again for backward in each micro-batch; each sub-group written once
        // and, for residual masters, what the update reads back of the weights nobody carried to it
        long weightReads = WeightsOnNvme ? 2L * microBatches * Layout.Ranges.Sum(r => WeightSlots.WindowByteCount(r, Layout.WeightType.ByteCount())) + UpdateWeightReadByteCount : 0;
        long weightWrites = WeightsOnNvme ? WeightByteCount : 0;
        long gradients = TiedGradientFileByteCount + GradientFileByteCount;
        return new NvmeTraffic(states, states, weightReads, weightWrites, activations, activations, gradients, gradients);
    }

    private static bool HasLossScaler(TrainingOptions options) => options.LossScaler is not null || options.Precision == PrecisionMode.Float16;

    /// <summary>
    /// Consumed when nothing needs the gradients after backward: one micro-batch and an update overlapped with it, on
    /// one process (data-parallel ranks reduce-scatter their accumulators after backward). On NVMe when the update waits
    /// for the norm (clipping, loss scaling) under the next forward, the states or weights use NVMe already and the fp32
    /// accumulators would take more than a quarter of the host budget (a run whose training state is in host memory, or
    /// without a budget, keeps its accumulators there: no extra I/O). Accumulation over micro-batches keeps fp32
    /// host accumulators: a sum on NVMe would read and write every gradient once per micro-batch.
    /// </summary>
    private static GradientTier GradientTierFor(TrainingOptions options, long accumulatorByteCount)
    {
        bool oneProcess = options.DataParallelGroup is not { WorldSize: > 1 };
        bool overlapped = options.OverlapOptimizerWithBackward && options.AdamW.MaxGradNorm <= 0 && !HasLossScaler(options) && oneProcess;
        // the update waits for the norm and runs under the next forward: gradients may wait on NVMe if it is in use
        bool deferred = options.OverlapOptimizerWithBackward && !overlapped && options.DeferUpdateToNextForward && oneProcess;
        bool offloaded = options.NvmeDirectory is not null && (options.OptimizerTier == StateTier.Nvme || options.ParameterTier == ParameterTier.Nvme);
        if (options.GradientTier == GradientTier.Consumed && !(overlapped && options.AccumulationSteps == 1))
            throw new ArgumentException("consumed gradients need one micro-batch per step and an update overlapped with backward (no clipping, no loss scaling).", nameof(options));
        if (options.GradientTier == GradientTier.Nvme && !(deferred && options.AccumulationSteps == 1 && options.NvmeDirectory is not null))
            throw new ArgumentException("gradients on NVMe need one micro-batch per step, an update deferred to the next forward (clipping or loss scaling on) and an NVMe directory.", nameof(options));
        if (options.GradientTier != GradientTier.Auto)
            return options.GradientTier;
        if (options.AccumulationSteps != 1)
            return GradientTier.HostAccumulators;
        // to NVMe when the fp32 accumulators would take more than a quarter of the host budget (none: they stay)
        bool tooBig = accumulatorByteCount > options.HostBudgetByteCount / 4;
        return overlapped ? GradientTier.Consumed : deferred && offloaded && tooBig ? GradientTier.Nvme : GradientTier.HostAccumulators;
    }

    /// <summary>
    /// The top decoder layers that keep their autograd graph from forward to backward instead of a saved input and a
    /// recompute (<see cref="TrainingOptions.KeptLayers"/>; -1: all). A kept graph holds the weights it used, so the
    /// weights must be resident.
    /// </summary>
    public int KeptLayers { get; }

    private static int KeptLayerCount(LlamaConfig config, TrainingOptions options, WeightTier weights)
    {
        int kept = options.KeptLayers < 0 ? config.LayerCount : Math.Min(options.KeptLayers, config.LayerCount);
        if (kept > 0 && weights == WeightTier.Nvme)
            throw new ArgumentException("kept layers need resident weights: a kept graph holds the weights it used, and NVMe weights stream through slots that the next layers reuse.", nameof(options));
        return kept;
    }

    /// <summary>
    /// The decoder layers below the kept ones that keep their graph too, with its saved tensors on NVMe
    /// (<see cref="TrainingOptions.SpilledLayers"/>; -1: every layer not kept): no recompute, and only the layers being
    /// written or read back in host memory. Needs nvme_dir, resident weights (the graph holds them) and the CPU.
    /// </summary>
    public int SpilledLayers { get; }

    /// <summary>
    /// The saved tensors of one decoder layer's graph (an estimate from the shapes): the spill file holds a quarter more
    /// than the spilled layers' estimate; what would overrun it stays in memory.
    /// </summary>
    public long LayerGraphByteCount { get; }

    /// <summary>Spilled layers' bytes that may still hold their pages while forward goes on, in layers (the spill's in-flight limit, and its page pool's).</summary>
    public const int SpillInFlightLayers = 2;

    /// <summary>The spill's in-flight limit in bytes: as much again sits in the capture's page pool.</summary>
    public long SpillInFlightByteCount => SpillInFlightLayers * LayerGraphByteCount;

    /// <summary>
    /// Host memory the spilled graphs hold besides the working set: the layers being written out, as much again in the
    /// page pool, and the layers read back ahead of backward (the staging buffers less one); 0 without a spill.
    /// </summary>
    public long SpillHostByteCount => SpilledLayers == 0 ? 0 : (2 * SpillInFlightByteCount) + (Options.ActivationStagingBuffers - 1) * LayerGraphByteCount;

    /// <summary>Bytes of the spill file for the spilled layers' saved tensors (0 without one).</summary>
    public long SpillFileByteCount => SpilledLayers == 0 ? 0
        : AlignedBuffer.RoundUpToSector(Options.SpillFileByteCount ?? SpilledLayers * LayerGraphByteCount * 5 / 4 + (1L << 20));

    /// <summary>
    /// The bytes a decoder layer's autograd graph saves for backward, from its shapes (b x t tokens, e bytes per
    /// element): the norms' inputs and outputs, q, k, v and their rotations, the keys and values repeated over the
    /// query heads, the attention output, the MLP's gate, up, SiLU and product (all in the compute type), and the
    /// attention probabilities (b, heads, t, t) with the scores they came from. At the 16-layer bench shape a run keeping
    /// every graph peaked within 1% of its plan, and a spilled graph's captured regions were 0.69 of this: for the
    /// spill file and its traffic it is an upper bound.
    /// </summary>
    public static long GraphByteCount(LlamaConfig config, long b, long t, long e)
    {
        long c = config.HiddenSize, kvWidth = (long)config.KvHeadCount * config.HeadDim;
        return b * t * (10L * c + 4L * kvWidth + 4L * config.IntermediateSize) * e + b * config.HeadCount * t * t * (2L * e + 4);
    }

    private static int SpilledLayerCount(LlamaConfig config, TrainingOptions options, WeightTier weights, int kept)
    {
        int left = config.LayerCount - kept;
        int spilled = options.SpilledLayers < 0 ? left : Math.Min(options.SpilledLayers, left);
        if (spilled == 0)
            return 0;
        if (weights == WeightTier.Nvme)
            throw new ArgumentException("spilled layers need resident weights: a kept graph holds the weights it used, and NVMe weights stream through slots that the next layers reuse.", nameof(options));
        if (options.NvmeDirectory is null)
            throw new ArgumentException("spilled layers write their saved tensors to nvme_dir, and none is set.", nameof(options));
        return spilled;
    }

    /// <summary>The saved inputs of the decoder layers that are recomputed (the kept top layers save none).</summary>
    private static ActivationStoreOptions? ActivationOptions(LlamaConfig config, DType dtype, TrainingOptions options, int keptLayers)
    {
        int layers = config.LayerCount - keptLayers;
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
