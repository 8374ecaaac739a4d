using FineTune.Offload.Activations;
using FineTune.Offload.Parameters;
using FineTune.Trainer.Models;
using FineTune.Torch;

namespace FineTune.Trainer.Training;

/// <summary>
/// A decoder layer whose autograd graph lives from its forward to its backward (what an eager PyTorch step does for
/// every layer), instead of its input saved and the layer recomputed: no recompute FLOPs, and the graph's saved
/// tensors (the layer's activations) in host memory meanwhile, or on NVMe when the graph is spilled
/// (<see cref="SavedTensorSpill"/>: the forward's allocations captured, written out and their pages given back,
/// read into the same addresses before backward). Forward runs the same ops on the same input as the recompute
/// would, so the gradients are the same bits. The graph holds the tensors of the weights it used, so a kept layer's
/// weights must stay where they are until its backward (resident weights, not NVMe slots).
/// </summary>
internal sealed class KeptGraph
{
    private readonly Tensor _input;

    private KeptGraph(Tensor input, Tensor output)
    {
        _input = input;
        Output = output;
    }

    /// <summary>The layer's output, with its graph.</summary>
    public Tensor Output { get; }

    /// <summary>Runs <paramref name="layer"/> on a grad-requiring leaf of <paramref name="input"/>; the intermediates' handles die here, the graph keeps what backward needs.</summary>
    public static KeptGraph Forward(DecoderLayer layer, Tensor input, StageWeights weights)
    {
        using (TensorScope.Enter())
        {
            var (leaf, output) = LayerRecompute.Record(x => layer.Forward(x, weights), input, inputHasGrad: true);
            return new KeptGraph(leaf.MoveToOuterScope(), output.MoveToOuterScope());
        }
    }

    /// <summary>
    /// <see cref="Forward"/> with its allocations captured, then the graph's saved tensors handed to
    /// <paramref name="spill"/> as layer <paramref name="index"/>: every region the forward left alive but the output's,
    /// which the next layer still reads, plus <paramref name="carried"/> (the layer below's output, this layer's
    /// input, which only this graph needs from now on). Returns the output's region, to carry to the next layer.
    /// </summary>
    public static (KeptGraph Graph, CapturedRegion? Output) ForwardSpilled(DecoderLayer layer, Tensor input, StageWeights weights, SavedTensorSpill spill, int index,
        CapturedRegion? carried)
    {
        var (graph, regions) = AllocationCapture.Run(() => Forward(layer, input, weights));
        IntPtr output = graph.Output.DataPointer;
        CapturedRegion? outputRegion = regions.Where(r => r.Holds(output)).Cast<CapturedRegion?>().FirstOrDefault();
        var saved = regions.Where(r => !r.Holds(output)).ToList();
        if (carried is { } below)
            saved.Add(below);
        spill.Spill(index, saved);
        return (graph, outputRegion);
    }

    /// <summary>Back-propagates <paramref name="outputGrad"/> (disposed) through the graph (freed); returns the input's gradient.</summary>
    public Tensor Backward(Tensor outputGrad)
    {
        using (TensorScope.Enter())
        {
            Tensor inputGrad = LayerRecompute.BackwardThrough(_input, Output, outputGrad, inputHasGrad: true)?.MoveToOuterScope()
                ?? throw new InvalidOperationException("a kept layer's input got no gradient.");
            outputGrad.Dispose();
            Output.Dispose();
            _input.Dispose();
            return inputGrad;
        }
    }
}
