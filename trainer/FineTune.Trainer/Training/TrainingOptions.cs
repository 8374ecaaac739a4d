using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;

namespace FineTune.Trainer.Training;

/// <summary>
/// Everything <see cref="TrainingEngine"/> needs besides the model: the shape of a micro-batch (to plan the
/// activation buffers), where each class of state lives, precision, optimizer and schedule. Defaults: fp32, weights,
/// states and checkpoints in host memory, AdamW with PyTorch's defaults, constant learning rate.
/// </summary>
public sealed record TrainingOptions
{
    public PrecisionMode Precision { get; init; } = PrecisionMode.Float32;

    /// <summary>Largest micro-batch rows (B) a step will see.</summary>
    public required int MicroBatchSize { get; init; }

    /// <summary>Tokens per row (T).</summary>
    public required int SequenceLength { get; init; }

    /// <summary>AdamW hyper-parameters; MaxGradNorm &gt; 0 turns on global-norm clipping.</summary>
    public AdamWOptions AdamW { get; init; } = new();

    /// <summary>Learning rate per step; null keeps AdamW.LearningRate.</summary>
    public LearningRateSchedule? Schedule { get; init; }

    /// <summary>Dynamic loss scaling; fp16 gets a default scaler when null. Usable with fp32 too (tests, experiments).</summary>
    public DynamicLossScaler? LossScaler { get; init; }

    /// <summary>Where fp32 master, m and v live.</summary>
    public StateTier OptimizerTier { get; init; } = StateTier.Host;

    /// <summary>
    /// With bf16 weights and the states swapped (one process), store each fp32 master as its bf16 weight plus a 16-bit
    /// residual: 10 bytes of states per parameter read and written each step instead of 12, the same bits
    /// (<see cref="FineTune.Offload.Adam.MasterResidual"/>). False keeps whole fp32 masters in the swap.
    /// </summary>
    public bool ResidualMasters { get; init; } = true;

    /// <summary>
    /// With residual masters, the gradients held for the update's pass under the next forward carry their weights too
    /// (twice their host memory) instead of that pass reading the weights back (2 bytes per held parameter per step).
    /// A run turns it on when host_gb has room for it.
    /// </summary>
    public bool CarryHeldWeights { get; init; }

    /// <summary>Where the low-precision weights live: resident, or on NVMe streamed layer by layer.</summary>
    public ParameterTier ParameterTier { get; init; } = ParameterTier.Device;

    /// <summary>
    /// Parameter offload: resident decoder-layer weight slots (the layer computing plus ParameterSlots - 1 prefetched
    /// ahead); an embedding or LM head larger than a layer gets one extra slot of its own size.
    /// </summary>
    public int ParameterSlots { get; init; } = 3;

    /// <summary>
    /// Parameter offload: true (the default) reads every trained weight back into tensors the model owns when the
    /// engine is disposed, so the model stays usable; false leaves the parameters non-resident (the weights end with
    /// the weight file), for a caller that saved them already and whose model may not fit in host memory.
    /// </summary>
    public bool RestoreWeightsOnDispose { get; init; } = true;

    /// <summary>
    /// The top this many decoder layers keep their autograd graph from forward to backward (their activations in host
    /// memory, as an eager step keeps them) instead of saving their input and recomputing them in backward; -1: every
    /// layer, 0 (the default): recompute every layer. The same gradients either way. Needs resident weights.
    /// </summary>
    public int KeptLayers { get; init; }

    /// <summary>
    /// The next this many decoder layers below the kept ones keep their graph too, with its saved tensors written to
    /// nvme_dir after the layer's forward and read back before its backward (SSDTrain's way; -1: every layer not kept),
    /// instead of a saved input and a recompute. The same gradients as a kept graph, bit for bit. CPU, resident weights.
    /// </summary>
    public int SpilledLayers { get; init; }

    /// <summary>
    /// Bytes of the spilled layers' file for one micro-batch; null: a quarter more than the plan's estimate of their
    /// graphs (<see cref="Planning.MemoryPlan.GraphByteCount"/>). Saved tensors that would overrun it stay in host memory
    /// (<see cref="StepMetrics.UnspilledActivationByteCount"/>).
    /// </summary>
    public long? SpillFileByteCount { get; init; }

    /// <summary>
    /// The caller loads the optimizer states from a checkpoint right after construction (a resume): with states on
    /// NVMe the engine does not write initial ones first.
    /// </summary>
    public bool StatesFromCheckpoint { get; init; }

    /// <summary>Decoder-layer checkpoints (from the lowest layer up) kept on NVMe rather than in host buffers; -1: all.</summary>
    public int NvmeActivationLayers { get; init; }

    /// <summary>Directory for the optimizer and activation swap files (nvme_dir).</summary>
    public string? NvmeDirectory { get; init; }

    /// <summary>Host bytes the engine's pools may reserve in all (host_gb); construction refuses a plan above it.</summary>
    public long HostBudgetByteCount { get; init; } = long.MaxValue;

    /// <summary>Elements per optimizer sub-group (the unit of swapping and of overlap with backward).</summary>
    public long SubGroupElementCount { get; init; } = 4_000_000;

    /// <summary>
    /// A large embedding or LM head is computed in row blocks of about this many elements, so host memory holds one
    /// block (a 128k vocabulary at hidden 3072 is 0.8 GB in bf16); -1 (default): when it is more than twice a decoder
    /// layer, blocks of half a layer; 0: never.
    /// </summary>
    public long EdgeBlockElementCount { get; init; } = -1;

    /// <summary>
    /// A tied LM head computed in row blocks, with consumed gradients: true computes each block's weight gradient at the
    /// embedding's backward, from the logits' gradient kept until then (tokens x vocabulary in the weights' dtype);
    /// false makes it at the head's backward and lets it wait for the embedding's on NVMe (the tied weight's gradient
    /// written and read once a step). Null (default): kept when the step has no more tokens than the hidden size, so the
    /// kept gradient is no larger than the weight's.
    /// </summary>
    public bool? DeferTiedHeadGradient { get; init; }

    /// <summary>Micro-batches per optimizer step the engine is planned for (gradient_accumulation_steps).</summary>
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Where gradients go between backward and the optimizer; Auto lets the plan decide.</summary>
    public Gradients.GradientTier GradientTier { get; init; } = Gradients.GradientTier.Auto;

    /// <summary>
    /// With clipping or loss scaling (the update needs the global norm first): true (default) decides the step when
    /// backward ends and applies it under the next step's forward, stage by stage (exact, the state I/O off the
    /// critical path); false runs it after backward with the first state reads prefetched during the last backward.
    /// </summary>
    public bool DeferUpdateToNextForward { get; init; } = true;

    /// <summary>Update finished sub-groups while backward continues (only without clipping and loss scaling).</summary>
    public bool OverlapOptimizerWithBackward { get; init; } = true;

    /// <summary>
    /// With the update overlapped with backward: about this many parameters at the top of the model (from a sub-group
    /// boundary) are updated under the next forward instead (<c>Updates/SplitUpdate</c>), their bf16 gradients held in
    /// host memory until then; the drive, which only reads weights under forward, moves their states there. 0: off.
    /// </summary>
    public long UpdateUnderForwardElementCount { get; init; }

    /// <summary>Threads of the CPU AdamW; -1: every core.</summary>
    public int OptimizerThreads { get; init; } = -1;

    /// <summary>Staging buffers for NVMe checkpoints (prefetch depth is one less).</summary>
    public int ActivationStagingBuffers { get; init; } = 3;

    public IoEngineKind IoEngine { get; init; } = IoEngineKind.Auto;

    /// <summary>
    /// The data-parallel group this engine is one rank of (null, or a group of one: a single process). Every rank
    /// builds its engine from the same model and options and steps with its own shard of each global batch (rows of a
    /// <see cref="Data.DataLoader"/> with this rank and world size; <see cref="Data.Batch.GlobalTokenCount"/> is the loss
    /// denominator); ZeRO: each rank holds the optimizer state of its share of the sub-groups
    /// (<see cref="FineTune.Offload.DataParallel.RankPartition"/>). Each rank's nvme_dir should be its own.
    /// </summary>
    public FineTune.Torch.Distributed.ProcessGroup? DataParallelGroup { get; init; }

    /// <summary>
    /// Told how far the engine's construction is, in bytes: the phase ("weights", copied into the store or its NVMe
    /// file; "optimizer states", created from the masters), the bytes done and the phase's total. Minutes at the
    /// billion scale; a run prints it with an ETA.
    /// </summary>
    public Action<string, long, long>? SetupProgress { get; init; }
}
