namespace FineTune.Trainer.Training.Adapters;

/// <summary>The model shape, adapters and step of `finetune bench lora` (<see cref="AdapterBench"/>).</summary>
public sealed record AdapterBenchOptions
{
    /// <summary>Directory on the drive to test: the generated base and the bandwidth file go here.</summary>
    public required string NvmeDirectory { get; init; }

    public int LayerCount { get; init; } = 4;
    public int HiddenSize { get; init; } = 4096;
    public int IntermediateSize { get; init; } = 11008;
    public int HeadCount { get; init; } = 32;
    public int KvHeadCount { get; init; } = 32;
    public int VocabSize { get; init; } = 32000;

    public int Rank { get; init; } = 8;
    public IReadOnlyList<string> TargetModules { get; init; } = ["q_proj", "v_proj"];

    public int MicroBatchSize { get; init; } = 1;
    public int SequenceLength { get; init; } = 16;

    /// <summary>Steps measured (every one reads the whole base twice).</summary>
    public int Steps { get; init; } = 3;

    /// <summary>Decoder-layer slots of the streamed base (the layer computing plus the ones being read ahead).</summary>
    public int ParameterSlots { get; init; } = 3;

    /// <summary>Bytes of the sequential O_DIRECT bandwidth test run before the base is created.</summary>
    public long BandwidthTestByteCount { get; init; } = 4L << 30;

    public long Seed { get; init; } = 1;
}
