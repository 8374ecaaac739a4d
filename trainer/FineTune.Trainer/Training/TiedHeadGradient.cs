using FineTune.Offload.Parameters;
using FineTune.Torch;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Training;

/// <summary>
/// A tied LM head's weight gradient made at the embedding's backward instead of at its own. The tied weight's
/// gradient is the head's share (every row) plus the embedding's (the batch's tokens' rows), and the update needs the
/// sum; the head's share comes first in backward and the embedding's last. Instead of keeping the head's share from
/// one end of backward to the other (vocabulary x hidden: 0.8 GB in bf16 for Llama-3.2-3B, on NVMe or in host memory),
/// this keeps what makes it — the logits' gradient and the head's input, tokens x (vocabulary + hidden): 66 MB for
/// 256 tokens there — and makes block j's share just before the embedding's block j, as the product autograd's linear
/// backward computes for a weight (the (tokens, rows) gradient transposed times the (tokens, hidden) input), so the
/// bits are the head backward's own. The share is reported to the harvest as the head stage's, exactly as the head's
/// backward would have reported it.
/// </summary>
internal sealed class TiedHeadGradient(Tensor input, Tensor logitsGrad) : IDisposable
{
    /// <summary>Block <paramref name="block"/>'s share, through <paramref name="stageDone"/> as stage <paramref name="head"/>'s gradient.</summary>
    public void Report(int head, LayoutBlock block, Action<int, LayoutBlock?, StageWeights?> stageDone)
    {
        using (TensorScope.Enter())
        {
            long tokens = input.Shape[0] * input.Shape[1];
            Tensor outputGrad = logitsGrad.Narrow(2, block.FirstRow, block.Rows).Contiguous().View(tokens, block.Rows);
            Tensor gradient = MatMul(outputGrad.Transpose(0, 1), input.Reshape(tokens, input.Shape[2])); // (rows, hidden)
            // the harvest reads a weight's .grad; this stands for the block's weight, which the share does not need
            Tensor weight = gradient.Detach();
            weight.Grad = gradient;
            using var weights = new StageWeights(_ => weight);
            stageDone(head, block, weights);
        }
    }

    public void Dispose()
    {
        input.Dispose();
        logitsGrad.Dispose();
    }
}
