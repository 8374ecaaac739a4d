namespace FineTune.Trainer.Generation;

/// <summary>
/// What <see cref="LlamaGenerator.Generate"/> does: at most <see cref="MaxNewTokenCount"/> tokens, chosen by
/// <see cref="Sampling"/>, stopping when the generated ids end with one of <see cref="StopSequences"/> (EOS, a chat
/// template's end of turn; the stop sequence is not returned). <see cref="UseKvCache"/> false re-runs the whole
/// sequence through the model for every token (the reference the cached path is tested against).
/// </summary>
public sealed record GenerationOptions
{
    public int MaxNewTokenCount { get; init; } = 128;

    public SamplingOptions Sampling { get; init; } = SamplingOptions.Greedy;

    public IReadOnlyList<int[]> StopSequences { get; init; } = [];

    public bool UseKvCache { get; init; } = true;
}
