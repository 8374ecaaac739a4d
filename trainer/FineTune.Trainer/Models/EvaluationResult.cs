namespace FineTune.Trainer.Models;

/// <summary>The outcome of <see cref="LlamaEvaluator.Evaluate"/>.</summary>
/// <param name="TokenCount">Tokens evaluated.</param>
/// <param name="PredictionCount">Next-token predictions scored (TokenCount - 1).</param>
/// <param name="WindowCount">Forward passes (windows of at most the sequence length).</param>
/// <param name="MeanCrossEntropy">Mean next-token cross-entropy in nats per predicted token.</param>
public sealed record EvaluationResult(long TokenCount, long PredictionCount, int WindowCount, double MeanCrossEntropy)
{
    public double Perplexity => Math.Exp(MeanCrossEntropy);
}
