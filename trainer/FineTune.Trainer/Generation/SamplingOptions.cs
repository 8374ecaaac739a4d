namespace FineTune.Trainer.Generation;

/// <summary>
/// How the next token is chosen from the logits: greedy (argmax) when <see cref="Temperature"/> is 0, else sampled
/// from softmax(logits / temperature) restricted to the <see cref="TopK"/> most likely tokens (0 = all) and then to
/// the smallest set whose probability reaches <see cref="TopP"/> (1 = all), drawn with a generator seeded by
/// <see cref="Seed"/>, so the same seed gives the same text.
/// </summary>
public sealed record SamplingOptions(double Temperature = 0, int TopK = 0, double TopP = 1.0, ulong Seed = 0)
{
    public static SamplingOptions Greedy { get; } = new();

    public bool IsGreedy => Temperature == 0;

    /// <summary>Refuses values that cannot define a distribution, naming the option.</summary>
    public void Validate()
    {
        if (!(Temperature >= 0) || double.IsInfinity(Temperature))
            throw new UserErrorException($"--temperature {Temperature} must be 0 (greedy) or positive.");
        if (TopK < 0)
            throw new UserErrorException($"--top-k {TopK} must be 0 (off) or positive.");
        if (!(TopP > 0 && TopP <= 1))
            throw new UserErrorException($"--top-p {TopP} must be in (0, 1].");
    }
}
