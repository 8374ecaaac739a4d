using FineTune.Trainer.Data;

namespace FineTune.Trainer.Generation;

/// <summary>
/// Picks the next token from a position's logits (V floats) as <see cref="SamplingOptions"/> says, in the order
/// transformers applies its logits warpers: temperature, then top-k (keeps every token whose logit ties the k-th),
/// then top-p (keeps the most likely tokens until their probability reaches p, at least one). The random draw is
/// SplitMix64 seeded once per generation (53-bit uniform), so a seed fixes the text on every machine.
/// reference: transformers generation/logits_process.py TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper.
/// </summary>
public sealed class Sampler
{
    private readonly SamplingOptions _options;
    private SplitMix64 _random;

    public Sampler(SamplingOptions options)
    {
        options.Validate();
        _options = options;
        _random = new SplitMix64(options.Seed);
    }

    public int Next(ReadOnlySpan<float> logits) => _options.IsGreedy ? ArgMax(logits) : Draw(Distribution(logits, _options));

    public static int ArgMax(ReadOnlySpan<float> logits)
    {
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
        {
            if (logits[i] > logits[best])
                best = i;
        }
        return best;
    }

    /// <summary>The probabilities sampling draws from (zero for filtered tokens), summing to 1. Not for greedy options.</summary>
    public static double[] Distribution(ReadOnlySpan<float> logits, SamplingOptions options)
    {
        int n = logits.Length;
        var scaled = new double[n];
        for (int i = 0; i < n; i++)
            scaled[i] = logits[i] / options.Temperature;
        int[] order = Enumerable.Range(0, n).OrderByDescending(i => scaled[i]).ThenBy(i => i).ToArray();
        int kept = n;
        if (options.TopK > 0 && options.TopK < n)
        {
            double threshold = scaled[order[options.TopK - 1]];
            kept = options.TopK;
            while (kept < n && scaled[order[kept]] == threshold)
                kept++;
        }
        double max = scaled[order[0]];
        var probabilities = new double[n];
        double sum = 0;
        for (int r = 0; r < kept; r++)
            sum += probabilities[order[r]] = Math.Exp(scaled[order[r]] - max);
        if (options.TopP < 1)
        {
            double cumulative = 0;
            int nucleus = 0;
            while (nucleus < kept && cumulative < options.TopP * sum)
                cumulative += probabilities[order[nucleus++]];
            for (int r = nucleus; r < kept; r++)
                probabilities[order[r]] = 0;
            sum = cumulative;
        }
        for (int i = 0; i < n; i++)
            probabilities[i] /= sum;
        return probabilities;
    }

    private int Draw(double[] probabilities)
    {
        double u = (_random.NextUInt64() >> 11) * (1.0 / (1UL << 53));
        double cumulative = 0;
        int last = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] == 0)
                continue;
            cumulative += probabilities[i];
            last = i;
            if (u < cumulative)
                return i;
        }
        return last; // rounding left u above the final cumulative sum
    }
}
