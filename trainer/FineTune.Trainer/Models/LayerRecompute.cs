using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The shared backward of every <see cref="IModelLayer"/>: run the layer's forward again on a detached copy of
/// the saved input with autograd on, then back-propagate the output gradient through that sub-graph only.
/// Parameter gradients accumulate in the parameters' .grad (they are leaves that require grad); the input's
/// gradient is returned. Temporaries of the recomputation die with a local scope. The two halves, <see cref="Record"/>
/// and <see cref="BackwardThrough"/>, also serve a layer whose graph is kept from forward to backward (no recompute).
/// </summary>
internal static class LayerRecompute
{
    public static Tensor? Backward(Func<Tensor, Tensor> forward, Tensor input, Tensor outputGrad, bool inputHasGrad)
    {
        using (TensorScope.Enter())
        {
            var (leaf, output) = Record(forward, input, inputHasGrad);
            return BackwardThrough(leaf, output, outputGrad, inputHasGrad)?.MoveToOuterScope();
        }
    }

    /// <summary>
    /// <paramref name="forward"/> on a leaf detached from <paramref name="input"/> (requiring grad when
    /// <paramref name="inputHasGrad"/>), with autograd on: the leaf and the output, whose graph holds what backward needs.
    /// </summary>
    public static (Tensor Leaf, Tensor Output) Record(Func<Tensor, Tensor> forward, Tensor input, bool inputHasGrad)
    {
        using (FineTune.Torch.Torch.EnableGrad())
        {
            Tensor leaf = input.Detach();
            if (inputHasGrad)
                leaf.RequiresGrad = true;
            return (leaf, forward(leaf));
        }
    }

    /// <summary>Back-propagates <paramref name="outputGrad"/> through the graph <see cref="Record"/> made (freed); the leaf's gradient, or null.</summary>
    public static Tensor? BackwardThrough(Tensor leaf, Tensor output, Tensor outputGrad, bool inputHasGrad)
    {
        FineTune.Torch.Torch.Backward([output], [outputGrad]);
        return inputHasGrad ? leaf.Grad : null;
    }
}
