using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Next-token cross-entropy with ignore index -100, as transformers' ForCausalLMLoss: logits upcast to float32,
/// position t predicts labels[t + 1], and the mean runs over the labels that are not -100. Here the shift is done
/// on the labels (<see cref="ShiftLabels"/>: targets[t] = labels[t + 1], the last target -100), so the loss and its
/// gradient cover the full (B, T, V) logits the LM head produced, which is what a layer-by-layer backward needs.
/// reference: transformers loss/loss_utils.py ForCausalLMLoss, fixed_cross_entropy.
/// </summary>
public static class CausalLmLoss
{
    public const long IgnoreIndex = -100;

    /// <summary>labels (B, T) int64 in HF convention -> targets (B, T): labels shifted left by one, -100 appended.</summary>
    public static Tensor ShiftLabels(Tensor labels)
    {
        long batch = labels.Shape[0], sequenceLength = labels.Shape[1];
        using (TensorScope.Enter())
        {
            Tensor pad = Full([batch, 1], IgnoreIndex, DType.Int64, labels.Device);
            return Cat([labels.Narrow(1, 1, sequenceLength - 1), pad], 1).MoveToOuterScope();
        }
    }

    /// <summary>
    /// logits (B, T, V) any float dtype, targets (B, T) int64 already shifted -> scalar float32 loss:
    /// the mean over non-ignored targets (NaN when all are ignored, as PyTorch), or their sum.
    /// </summary>
    public static Tensor FromTargets(Tensor logits, Tensor targets, Reduction reduction = Reduction.Mean)
    {
        long vocab = logits.Shape[^1];
        using (TensorScope.Enter())
        {
            Tensor flat = logits.To(DType.Float32).Reshape(-1, vocab);
            return CrossEntropy(flat, targets.Reshape(-1), IgnoreIndex, reduction).MoveToOuterScope();
        }
    }

    /// <summary>HF-convention loss: logits (B, T, V), labels (B, T) unshifted (typically the input ids, -100 where masked).</summary>
    public static Tensor FromLabels(Tensor logits, Tensor labels, Reduction reduction = Reduction.Mean)
    {
        using (TensorScope.Enter())
            return FromTargets(logits, ShiftLabels(labels), reduction).MoveToOuterScope();
    }

    /// <summary>
    /// The loss and dLoss/dlogits (B, T, V) in the logits' dtype, for the top of a layer-by-layer backward:
    /// <paramref name="lossScale"/> multiplies the gradient (e.g. 1 / micro-batch count, or a loss scale).
    /// </summary>
    public static (Tensor Loss, Tensor LogitsGrad) ForwardBackward(Tensor logits, Tensor targets, double lossScale = 1.0,
        Reduction reduction = Reduction.Mean)
    {
        using (TensorScope.Enter())
        using (EnableGrad())
        {
            Tensor leaf = logits.Detach();
            leaf.RequiresGrad = true;
            Tensor loss = FromTargets(leaf, targets, reduction);
            Tensor seed = Full([], lossScale, DType.Float32, loss.Device);
            Tensor grad = Grad([loss], [leaf], [seed])[0]!;
            return (loss.Detach().MoveToOuterScope(), grad.MoveToOuterScope());
        }
    }
}
