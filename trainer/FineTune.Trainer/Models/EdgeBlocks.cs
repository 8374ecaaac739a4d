using FineTune.Offload.Parameters;
using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// An embedding or LM head computed one row block of its weight at a time (a 128k-row vocabulary at hidden 3072 is
/// 0.8 GB in bf16: host memory holds one block, not the weight). Embedding: each token's row comes from the block that
/// holds it (a gather per block, tokens outside it masked). LM head: the logits of block j are h W_j^T, written into
/// their columns; backward recomputes each block with autograd, so W_j's gradient is that block's rows and dh sums the
/// blocks' contributions in fp32. The gathered embedding rows are the unblocked ones bit for bit; the head's dh adds the
/// same products in another order than one matrix product over the whole vocabulary (within rounding of it).
/// </summary>
internal static class EdgeBlocks
{
    /// <summary>ids (B, T) int64 -> (B, T, C): each token's row, from the blocks that hold them.</summary>
    public static Tensor EmbeddingForward(EmbeddingLayer layer, Tensor ids, long[] tokens, IReadOnlyList<LayoutBlock> blocks, Func<int, StageWeights> acquire, long hidden, DType dtype)
    {
        using (TensorScope.Enter())
        {
            Tensor x = Zeros([ids.Shape[0], ids.Shape[1], hidden], dtype);
            for (int j = 0; j < blocks.Count; j++)
            {
                if (!Holds(blocks[j], tokens))
                    continue; // no token of this batch lies in the block: nothing to read
                using StageWeights weights = acquire(j);
                x = BlockRows(layer, ids, tokens, blocks[j], weights, x);
            }
            return x.MoveToOuterScope();
        }
    }

    /// <summary><paramref name="x"/> with the rows of the tokens in <paramref name="block"/> taken from its weight rows (autograd flows to them).</summary>
    public static Tensor BlockRows(EmbeddingLayer layer, Tensor ids, long[] tokens, LayoutBlock block, StageWeights weights, Tensor x)
    {
        long[] shape = ids.Shape;
        var local = new long[tokens.Length];
        var inside = new bool[tokens.Length];
        for (int i = 0; i < tokens.Length; i++)
        {
            long row = tokens[i] - block.FirstRow;
            inside[i] = row >= 0 && row < block.Rows;
            local[i] = inside[i] ? row : 0;
        }
        Tensor rows = Embedding(weights[layer.Weight], FromArray(local, shape)); // (B, T, C)
        return Where(FromArray(inside, shape).Unsqueeze(-1), rows, x);
    }

    /// <summary>True when some token id lies in the block's rows.</summary>
    public static bool Holds(LayoutBlock block, long[] tokens)
    {
        foreach (long id in tokens)
            if (id >= block.FirstRow && id < block.FirstRow + block.Rows)
                return true;
        return false;
    }

    /// <summary>h (B, T, C) -> logits (B, T, V), block by block.</summary>
    public static Tensor HeadForward(LmHeadLayer layer, Tensor h, IReadOnlyList<LayoutBlock> blocks, Func<int, StageWeights> acquire, long vocab)
    {
        using (TensorScope.Enter())
        {
            Tensor logits = Empty([h.Shape[0], h.Shape[1], vocab], h.DType);
            for (int j = 0; j < blocks.Count; j++)
            {
                using StageWeights weights = acquire(j);
                logits.Narrow(2, blocks[j].FirstRow, blocks[j].Rows).CopyFrom(Linear(h, weights[layer.Weight]));
            }
            return logits.MoveToOuterScope();
        }
    }
}
