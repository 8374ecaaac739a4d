namespace FineTune.Trainer.Training.Bench;

/// <summary>What `finetune bench step` trains: a seeded Llama of this shape on random tokens, on the CPU.</summary>
public sealed record StepBenchOptions
{
    public int LayerCount { get; init; } = 4;
    public int HiddenSize { get; init; } = 256;
    public int IntermediateSize { get; init; } = 688;
    public int HeadCount { get; init; } = 8;
    public int VocabSize { get; init; } = 4096;
    public int MicroBatchSize { get; init; } = 4;
    public int SequenceLength { get; init; } = 128;
    public int AccumulationSteps { get; init; } = 1;

    /// <summary>Weights and activations in bf16 (fp32 masters and states) instead of fp32.</summary>
    public bool BFloat16 { get; init; }

    /// <summary>max_grad_norm of the clipping configurations (clip triggers when the norm exceeds it).</summary>
    public double ClipGradNorm { get; init; } = 1.0;

    /// <summary>Untimed steps before the timed ones (allocator warm-up, page cache, first AdamW step).</summary>
    public int WarmupSteps { get; init; } = 2;

    /// <summary>Timed steps per configuration; the median step time is reported.</summary>
    public int TimedSteps { get; init; } = 6;

    /// <summary>Directory for optimizer-state and activation swap (the drive under test).</summary>
    public required string NvmeDirectory { get; init; }

    public long SubGroupElementCount { get; init; } = 2_000_000;

    /// <summary>The bench model's config (checked): this shape, no GQA, positions for the sequence.</summary>
    public Models.LlamaConfig ModelConfig()
    {
        var config = new Models.LlamaConfig
        {
            ModelType = "llama", VocabSize = VocabSize, HiddenSize = HiddenSize, IntermediateSize = IntermediateSize,
            LayerCount = LayerCount, HeadCount = HeadCount, KvHeadCount = HeadCount,
            HeadDim = HiddenSize / HeadCount, MaxPositionEmbeddings = Math.Max(2048, SequenceLength),
        };
        config.Validate("the bench model");
        return config;
    }
}
