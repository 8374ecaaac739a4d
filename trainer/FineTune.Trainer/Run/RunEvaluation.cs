using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Runs;

/// <summary>
/// eval/loss: the token-mean cross-entropy of the model on the held-out samples (eval.fraction of the records),
/// read in file order with the training batch shape, at most <see cref="MaxBatchCount"/> batches, no gradients.
/// </summary>
public static class RunEvaluation
{
    public const int MaxBatchCount = 16;

    public static double Loss(LlamaModel model, TokenizedDataset data, DataLoaderOptions trainOptions)
    {
        var loader = new DataLoader(data, trainOptions with { Shuffle = false });
        int batchCount = (int)Math.Min(MaxBatchCount, Math.Max(1, (data.Samples.Count + trainOptions.BatchSize - 1) / trainOptions.BatchSize));
        double lossSum = 0;
        long tokenCount = 0;
        using (Torch.Torch.NoGrad())
        {
            for (int i = 0; i < batchCount; i++)
            {
                Batch batch = loader.Next();
                if (batch.TokenCount == 0)
                    continue;
                using var scope = TensorScope.Enter();
                Tensor ids = Torch.Torch.FromArray(batch.InputIds, [batch.BatchSize, batch.SequenceLength]).To(model.Device);
                Tensor labels = Torch.Torch.FromArray(batch.Labels, [batch.BatchSize, batch.SequenceLength]).To(model.Device);
                float mean = model.Loss(ids, labels).To(Device.Cpu, DType.Float32).ToArray<float>()[0];
                lossSum += (double)mean * batch.TokenCount;
                tokenCount += batch.TokenCount;
            }
        }
        return tokenCount == 0 ? double.NaN : lossSum / tokenCount;
    }
}
