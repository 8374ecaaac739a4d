using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Mean next-token cross-entropy and perplexity of a token stream, as `finetune eval` prints it. The stream is cut
/// into windows of <c>sequenceLength</c> inputs that advance by <c>sequenceLength</c>: window k feeds tokens
/// [kS, kS + S) and scores their successors [kS + 1, kS + S + 1), so every token after the first is predicted
/// exactly once, from the context inside its own window (no overlap, no stride trick). Sums run in float64.
/// </summary>
public static class LlamaEvaluator
{
    public static EvaluationResult Evaluate(LlamaModel model, IReadOnlyList<int> tokens, int sequenceLength)
    {
        if (sequenceLength <= 0)
            throw new UserErrorException($"--seq {sequenceLength} must be a positive number of tokens.");
        if (tokens.Count < 2)
            throw new UserErrorException($"evaluation needs at least 2 tokens (one prediction), got {tokens.Count}.");
        for (int i = 0; i < tokens.Count; i++)
        {
            if (tokens[i] < 0 || tokens[i] >= model.Config.VocabSize)
                throw new UserErrorException(
                    $"token {i} is id {tokens[i]}, outside the model's vocabulary [0, {model.Config.VocabSize}); check the tokens or the tokenizer.");
        }

        double sum = 0;
        long predictions = 0;
        int windows = 0;
        using var noGrad = NoGrad();
        for (int start = 0; start < tokens.Count - 1; start += sequenceLength)
        {
            int inputCount = Math.Min(sequenceLength, tokens.Count - 1 - start);
            long[] ids = new long[inputCount];
            long[] targets = new long[inputCount];
            for (int t = 0; t < inputCount; t++)
            {
                ids[t] = tokens[start + t];
                targets[t] = tokens[start + t + 1];
            }
            using (TensorScope.Enter())
            {
                Tensor input = FromArray(ids, [1, inputCount]).To(model.Device);
                Tensor target = FromArray(targets, [1, inputCount]).To(model.Device);
                Tensor logits = model.Forward(input);
                sum += CausalLmLoss.FromTargets(logits, target, Reduction.Sum).Item<float>();
            }
            predictions += inputCount;
            windows++;
        }
        return new EvaluationResult(tokens.Count, predictions, windows, sum / predictions);
    }
}
