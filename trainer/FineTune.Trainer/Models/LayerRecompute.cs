using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// The shared backward of every <see cref="IModelLayer"/>: run the layer's forward again on a detached copy of
/// the saved input with autograd on, then back-propagate the output gradient through that sub-graph only.
/// Parameter gradients accumulate in the parameters' .grad (they are leaves that require grad); the input's
/// gradient is returned. Temporaries of the recomputation die with a local scope.
/// </summary>
internal static class LayerRecompute
{
    public static Tensor? Backward(Func<Tensor, Tensor> forward, Tensor input, Tensor outputGrad, bool inputHasGrad)
    {
        using (TensorScope.Enter())
        using (FineTune.Torch.Torch.EnableGrad())
        {
            Tensor leaf = input.Detach();
            if (inputHasGrad)
                leaf.RequiresGrad = true;
            Tensor output = forward(leaf);
            FineTune.Torch.Torch.Backward([output], [outputGrad]);
            return inputHasGrad ? leaf.Grad?.MoveToOuterScope() : null;
        }
    }
}
