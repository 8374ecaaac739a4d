namespace FineTune.Offload.Memory;

/// <summary>
/// The classes of host buffers the pool holds, one per tensor-shape class of the plan. Typed so the plan, the pool and
/// the stores that rent from it cannot disagree on a name; <see cref="BufferKinds.Describe"/> gives the text
/// `finetune plan` prints.
/// </summary>
public enum BufferKind
{
    /// <summary>Every parameter's low-precision weights, resident (one flat buffer).</summary>
    ResidentWeights,

    /// <summary>fp32 gradient accumulators of every parameter (one flat buffer).</summary>
    GradientAccumulators,

    /// <summary>Parameter offload: slots for decoder-layer (and final-norm) weights read from NVMe.</summary>
    LayerWeightSlots,

    /// <summary>Parameter offload: the slot for an embedding or LM head larger than a layer.</summary>
    EdgeWeightSlots,

    /// <summary>Parameter offload: buffers carrying updated weights back to the weight file.</summary>
    WeightWriteBack,

    /// <summary>Activation checkpoints kept in host memory, one per layer.</summary>
    ActivationCheckpoints,

    /// <summary>Staging buffers carrying activation checkpoints to and from NVMe.</summary>
    ActivationStaging,

    /// <summary>Optimizer sub-group states [master | m | v], full-size (resident: one per sub-group; swapped: the pipeline's).</summary>
    OptimizerStates,

    /// <summary>The states of a smaller last sub-group, at its exact size.</summary>
    OptimizerTailStates,

    /// <summary>
    /// Consumed gradients of a tied, blocked LM head: the staging buffer (one row block) carrying the head's gradient
    /// contribution to NVMe until the embedding's backward adds its own (instead of the whole V x C in host memory).
    /// </summary>
    TiedGradientStaging,

    /// <summary>Gradients on NVMe (an update that waits for the norm): the staging buffers backward's pieces are written through.</summary>
    GradientSpillStaging,

    /// <summary>Gradients on NVMe: the buffers the update reads each sub-group's gradients back into (the next ones read ahead).</summary>
    GradientSpillReads,

    /// <summary>Data parallel: the two stripe buffers (W sub-groups of fp32) gradients and weights move between ranks through.</summary>
    DataParallelStaging,

    /// <summary>Baseline allocator only: ZeRO-Infinity's fp32 gradient staging buffer (one sub-group).</summary>
    BaselineGradientStaging,

    /// <summary>Baseline allocator only: the fp32 temporary of ZeRO-Infinity's overflow check (one sub-group).</summary>
    BaselineOverflowTemporary,

    /// <summary>Test and bench buffers that belong to no store.</summary>
    Scratch,
}
