using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Data.Synthetic;
using FineTune.Trainer.Models;
using FineTune.Trainer.Tokenizers;

namespace FineTune.Trainer.Runs;

/// <summary>
/// Task accuracy of a model on held-out synthetic records: greedy decoding (argmax of the last position's logits,
/// one token at a time, the whole prefix re-run each time: the model is tiny, so no KV cache is needed) from the
/// prompt the training data used, then <see cref="SyntheticTask.Accuracy"/> (answer cut at EOS == expected answer).
/// </summary>
public static class SyntheticAccuracy
{
    public static double Measure(LlamaModel model, ITokenizer tokenizer, SyntheticTask task, IReadOnlyList<InstructionRecord> records,
        InstructionTemplate template, int maxSequenceLength, int maxNewTokenCount = 16)
    {
        var formatter = new InstructionFormatter(tokenizer, template);
        int eos = tokenizer.EosId ?? -1;
        var answers = new List<int[]>(records.Count);
        using (Torch.Torch.NoGrad())
        {
            foreach (InstructionRecord record in records)
            {
                var ids = formatter.PromptIds(record).Select(i => (long)i).ToList();
                var generated = new List<int>();
                while (generated.Count < maxNewTokenCount && ids.Count < maxSequenceLength)
                {
                    int next = NextToken(model, ids);
                    generated.Add(next);
                    if (next == eos)
                        break;
                    ids.Add(next);
                }
                answers.Add(generated.ToArray());
            }
        }
        return task.Accuracy(records, answers, tokenizer);
    }

    private static int NextToken(LlamaModel model, List<long> ids)
    {
        using var scope = TensorScope.Enter();
        Tensor input = Torch.Torch.FromArray(ids.ToArray(), [1, ids.Count]).To(model.Device);
        // (1, T, V) -> (V) logits of the last position, as fp32 on the CPU
        float[] logits = model.Forward(input).Narrow(1, ids.Count - 1, 1).To(Device.Cpu, DType.Float32).Contiguous().ToArray<float>();
        int best = 0;
        for (int i = 1; i < logits.Length; i++)
            if (logits[i] > logits[best])
                best = i;
        return best;
    }
}
