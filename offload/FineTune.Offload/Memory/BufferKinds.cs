namespace FineTune.Offload.Memory;

/// <summary>Text for <see cref="BufferKind"/> in plans and messages.</summary>
public static class BufferKinds
{
    public static string Describe(this BufferKind kind) => kind switch
    {
        BufferKind.ResidentWeights => "model weights",
        BufferKind.GradientAccumulators => "fp32 gradients",
        BufferKind.LayerWeightSlots => "weight slots (layers)",
        BufferKind.EdgeWeightSlots => "weight slots (embedding, lm_head)",
        BufferKind.WeightWriteBack => "weight write-back",
        BufferKind.ActivationCheckpoints => "activation checkpoints",
        BufferKind.ActivationStaging => "activation staging (nvme)",
        BufferKind.TiedGradientStaging => "tied lm_head gradient staging (nvme)",
        BufferKind.GradientSpillStaging => "gradient staging (nvme)",
        BufferKind.GradientSpillReads => "gradient reads (nvme)",
        BufferKind.OptimizerStates => "sub-group states",
        BufferKind.OptimizerTailStates => "tail sub-group states",
        BufferKind.DataParallelStaging => "data-parallel stripes",
        BufferKind.BaselineGradientStaging => "fp32 gradient staging (baseline)",
        BufferKind.BaselineOverflowTemporary => "overflow check temporary (baseline)",
        BufferKind.Scratch => "scratch",
        _ => kind.ToString(),
    };
}
