using FineTune.Offload.Activations;
using FineTune.Torch;
using FineTune.Trainer.Data;
using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Training;

/// <summary>
/// Forward and backward of one micro-batch, layer by layer, as DESIGN's data flow draws it: forward under no-grad,
/// each decoder layer's input saved (<see cref="LayerInputCheckpoints"/>: pool, NVMe or plain tensors); the loss and
/// dLoss/dlogits at the top; backward from the top, each layer recomputed with grad from its saved input while the
/// next-lower checkpoint is prefetched. Each stage computes with a lease from the weight source (the next stages
/// prefetched in the direction of travel). After each stage's backward, <c>stageDone</c> sees the stage and its lease
/// (its weights' .grad) before the lease is let go: the engine harvests gradients there and advances the optimizer.
/// Shared by the training engine, the LoRA engine and the in-memory baseline, so they differ only in where state
/// lives and what trains. <c>embeddingBackward</c> false skips the embedding's backward (LoRA with a frozen
/// embedding: nothing there gets a gradient, and its input, token ids, has none). <c>keptLayers</c>: the top that
/// many decoder layers keep their autograd graph from forward to backward instead (<see cref="KeptGraph"/>: no saved
/// input, no recompute; the same arithmetic, so the same bits), which holds the weights they used: resident weights only.
/// <c>spill</c>: the layers below the kept ones, as many as it has room for, keep their graph too, with its saved
/// tensors on NVMe (<see cref="KeptGraph.ForwardSpilled"/>), read back <c>stagingBuffers - 1</c> layers ahead of
/// backward; the layers below those recompute from their saved input. <c>deferTiedHead</c>: a tied LM head in row
/// blocks makes each block's weight gradient at the embedding's backward instead of its own, from the logits' gradient
/// kept until then (<see cref="TiedHeadGradient"/>), so nothing waits for the owner but tokens x vocabulary.
/// </summary>
internal sealed class MicroBatchPass(LlamaModel model, IWeightSource weights, LayerInputCheckpoints checkpoints, int stagingBuffers, bool embeddingBackward = true,
    int keptLayers = 0, SavedTensorSpill? spill = null, bool deferTiedHead = false)
{
    /// <summary>
    /// Runs the micro-batch; returns the sum of its token losses (the caller divides by the window's tokens).
    /// <paramref name="stageDone"/>(stage, block, weights) runs after each stage's backward — after each row block's, for
    /// a blocked embedding or LM head, with null weights for a block no token touched (its gradient is zero).
    /// </summary>
    public double Run(Batch batch, double gradientScale, Action<int, LayoutBlock?, StageWeights?>? stageDone)
    {
        if (spill is null)
            return RunPass(batch, gradientScale, stageDone);
        try
        {
            return RunPass(batch, gradientScale, stageDone);
        }
        catch
        {
            spill.Drain(); // before the graphs (and the regions the transfers use) are freed
            throw;
        }
    }

    private double RunPass(Batch batch, double gradientScale, Action<int, LayoutBlock?, StageWeights?>? stageDone)
    {
        spill?.BeginPass();
        using var scope = TensorScope.Enter();
        long[] shape = [batch.BatchSize, batch.SequenceLength];
        Tensor ids = FromArray(batch.InputIds, shape);       // (B, T) int64
        Tensor targets = FromArray(batch.Labels, shape);     // (B, T) int64, already shifted, -100 ignored
        IReadOnlyList<DecoderLayer> layers = model.Layers;
        int head = model.Stages.Count - 1, norm = head - 1;
        int firstKept = layers.Count - Math.Clamp(keptLayers, 0, layers.Count);
        int firstSpilled = firstKept - Math.Min(firstKept, spill?.LayerCount ?? 0);
        var kept = new KeptGraph?[layers.Count];
        CapturedRegion? carried = null;                      // the last spilled layer's output, spilled with the next one's graph

        IReadOnlyList<LayoutBlock>? embeddingBlocks = weights.Blocks(0), headBlocks = weights.Blocks(head);
        Tensor x;                                            // (B, T, C) residual stream
        using (NoGrad())
        {
            if (embeddingBlocks is null)
            {
                using StageWeights w = weights.Acquire(0, +1);
                x = model.Embedding.Forward(ids, w);
            }
            else
            {
                x = EdgeBlocks.EmbeddingForward(model.Embedding, ids, batch.InputIds, embeddingBlocks, j => weights.AcquireBlock(0, j, +1), model.Config.HiddenSize, model.DType);
            }
            for (int i = 0; i < layers.Count; i++)
            {
                Tensor next;
                using (StageWeights w = weights.Acquire(i + 1, +1))
                {
                    if (i >= firstKept)
                    {
                        kept[i] = KeptGraph.Forward(layers[i], x, w);
                        next = kept[i]!.Output.Detach();
                    }
                    else if (i >= firstSpilled)
                    {
                        (kept[i], carried) = KeptGraph.ForwardSpilled(layers[i], x, w, spill!, i - firstSpilled, carried);
                        next = kept[i]!.Output.Detach();
                    }
                    else
                    {
                        checkpoints.Save(i, x);
                        next = layers[i].Forward(x, w);
                    }
                }
                x.Dispose();
                x = next;
            }
        }
        // what the layers below layer `above` need in backward, stagingBuffers - 1 of them: a spilled graph's tensors or a saved input
        void PrefetchBelow(int above)
        {
            for (int j = above - 1; j >= Math.Max(0, above - stagingBuffers + 1); j--)
            {
                if (j >= firstSpilled)
                    spill!.Prefetch(j - firstSpilled);
                else
                    checkpoints.Prefetch(j);
            }
        }
        // The lower checkpoints are needed last: start reading the top NVMe ones while the head computes.
        PrefetchBelow(firstKept);

        Tensor normed, logits;
        using (NoGrad())
        {
            using (StageWeights w = weights.Acquire(norm, +1))
                normed = model.FinalNorm.Forward(x, w);      // (B, T, C)
            if (headBlocks is null)
            {
                using StageWeights w = weights.Acquire(head, -1); // backward starts here: prefetch downwards
                logits = model.LmHead.Forward(normed, w);    // (B, T, V)
            }
            else
            {
                logits = EdgeBlocks.HeadForward(model.LmHead, normed, headBlocks, j => weights.AcquireBlock(head, j, +1), model.Config.VocabSize);
            }
        }
        var (loss, logitsGrad) = CausalLmLoss.ForwardBackward(logits, targets, gradientScale, Reduction.Sum);
        double lossSum = loss.Item<double>();
        logits.Dispose();

        // a tied head's block gradients deferred to the embedding's backward keep what makes them (the logits' gradient, the head's input)
        using TiedHeadGradient? tiedHead = deferTiedHead && headBlocks is not null && model.LmHead.IsTied && embeddingBackward && stageDone is not null
            ? new TiedHeadGradient(normed, logitsGrad) : null;
        Tensor grad = headBlocks is null ? Backward(model.LmHead, head, normed, logitsGrad, stageDone)! : HeadBackward(head, headBlocks, normed, logitsGrad, stageDone, weightGradient: tiedHead is null);
        if (tiedHead is null)
            normed.Dispose();
        grad = Backward(model.FinalNorm, norm, x, grad, stageDone)!;
        x.Dispose();
        for (int i = layers.Count - 1; i >= 0; i--)
        {
            if (kept[i] is { } graph)
            {
                if (i >= firstSpilled && i < firstKept)
                {
                    PrefetchBelow(i);
                    spill!.Restore(i - firstSpilled);
                }
                using StageWeights w = weights.Acquire(i + 1, -1);
                grad = graph.Backward(grad);
                stageDone?.Invoke(i + 1, null, w);
                continue;
            }
            PrefetchBelow(i);
            Tensor input = checkpoints.Load(i);
            grad = Backward(layers[i], i + 1, input, grad, stageDone)!;
            input.Dispose();
        }
        if (!embeddingBackward)
            grad.Dispose();
        else if (embeddingBlocks is null)
            Backward(model.Embedding, 0, ids, grad, stageDone);
        else
            EmbeddingBackward(embeddingBlocks, ids, batch.InputIds, grad, stageDone, tiedHead is null ? null : block => tiedHead.Report(head, block, stageDone!));
        return lossSum;
    }

    /// <summary>
    /// The LM head's backward block by block, from the last: dh summed in fp32, each block's rows' gradient reported as it
    /// is done — or, without <paramref name="weightGradient"/> (a deferred tied head), not made at all: the weight takes
    /// no gradient, nothing is reported and the logits' gradient stays for <see cref="TiedHeadGradient"/>.
    /// </summary>
    private Tensor HeadBackward(int head, IReadOnlyList<LayoutBlock> blocks, Tensor normed, Tensor logitsGrad, Action<int, LayoutBlock?, StageWeights?>? stageDone, bool weightGradient)
    {
        using (TensorScope.Enter())
        {
            Tensor dh = Zeros(normed.Shape, DType.Float32);  // (B, T, C) fp32 sum over the blocks
            for (int j = blocks.Count - 1; j >= 0; j--)
            {
                using StageWeights w = weights.AcquireBlock(head, j, -1);
                Tensor weight = weightGradient ? w[model.LmHead.Weight] : w[model.LmHead.Weight].Detach();
                Tensor blockGrad = logitsGrad.Narrow(2, blocks[j].FirstRow, blocks[j].Rows).Contiguous(); // (B, T, rows)
                Tensor part = LayerRecompute.Backward(h => Linear(h, weight), normed, blockGrad, inputHasGrad: true)!;
                dh.AddInPlace(part);
                if (weightGradient)
                    stageDone?.Invoke(head, blocks[j], w);
            }
            if (weightGradient)
                logitsGrad.Dispose();
            return dh.To(normed.DType).MoveToOuterScope();
        }
    }

    /// <summary>
    /// The embedding's backward block by block, from the last (its rows' gradients final in descending order); a deferred
    /// tied head's share of each block is reported first (<paramref name="tiedHead"/>), as the head's backward would have.
    /// </summary>
    private void EmbeddingBackward(IReadOnlyList<LayoutBlock> blocks, Tensor ids, long[] tokens, Tensor grad, Action<int, LayoutBlock?, StageWeights?>? stageDone, Action<LayoutBlock>? tiedHead)
    {
        for (int j = blocks.Count - 1; j >= 0; j--)
        {
            LayoutBlock block = blocks[j];
            tiedHead?.Invoke(block);
            if (!EdgeBlocks.Holds(block, tokens))
            {
                stageDone?.Invoke(0, block, null); // no token in these rows: a zero gradient, nothing to read
                continue;
            }
            using StageWeights w = weights.AcquireBlock(0, j, -1);
            LayerRecompute.Backward(_ => EdgeBlocks.BlockRows(model.Embedding, ids, tokens, block, w, Zeros(grad.Shape, grad.DType)), ids, grad, inputHasGrad: false);
            stageDone?.Invoke(0, block, w);
        }
        grad.Dispose();
    }

    /// <summary>Backward of one stage with its lease held, then <paramref name="stageDone"/> before the lease goes.</summary>
    private Tensor? Backward(IModelLayer stage, int stageIndex, Tensor input, Tensor outputGrad, Action<int, LayoutBlock?, StageWeights?>? stageDone)
    {
        using StageWeights w = weights.Acquire(stageIndex, -1);
        Tensor? inputGrad = stage.Backward(input, outputGrad, w);
        outputGrad.Dispose();
        stageDone?.Invoke(stageIndex, null, w);
        return inputGrad;
    }
}
