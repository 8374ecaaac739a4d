using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// One stage of the model as the training step sees it: embedding, each decoder layer, final norm, LM head.
/// Forward is a pure function of its input and the layer's parameters, so it can be recomputed from a saved
/// input. Backward recomputes the forward with autograd from that saved input, back-propagates
/// <c>outputGrad</c>, accumulates into each parameter's .grad (PyTorch semantics: it adds) and returns the
/// gradient of the input (null for the embedding, whose input is token ids). Neither method disposes its
/// arguments; returned tensors belong to the current <see cref="TensorScope"/> (or the caller when none).
/// A training step with recomputation runs (see LlamaReferenceTests.LayerByLayerBackwardEqualsWholeGraphBackward):
/// <code>
/// using (Torch.NoGrad()) foreach (stage in model.Stages) { inputs.Add(x); x = stage.Forward(x); }   // x: logits
/// var (loss, grad) = CausalLmLoss.ForwardBackward(x, CausalLmLoss.ShiftLabels(labels));
/// for (s = Stages.Count - 1; s &gt;= 0; s--) grad = model.Stages[s].Backward(inputs[s], grad);      // null at the end
/// </code>
/// The weights come in explicitly (<see cref="StageWeights"/>): the overloads without them use the model's own
/// resident tensors; the training engine and <see cref="LlamaModel.Forward"/> pass a lease from the weight source.
/// Tied embeddings: the LM head's Backward accumulates into the embedding's weight, so both stages add to one .grad.
/// </summary>
public interface IModelLayer
{
    /// <summary>"embedding", "layer.3", "norm", "lm_head": for logs and error messages.</summary>
    string Name { get; }

    /// <summary>The parameters this layer owns (the LM head owns none when tied to the embedding).</summary>
    IReadOnlyList<NamedParameter> Parameters { get; }

    /// <summary>The layer's output, computing with <paramref name="weights"/> (a lease of the stage's weights from the model's source).</summary>
    Tensor Forward(Tensor input, StageWeights weights);

    /// <summary>Recompute-backward from the saved <paramref name="input"/>, with <paramref name="weights"/>.</summary>
    Tensor? Backward(Tensor input, Tensor outputGrad, StageWeights weights);

    /// <summary>Forward with the model's own resident tensors.</summary>
    Tensor Forward(Tensor input) => Forward(input, StageWeights.Resident);

    /// <summary>Backward with the model's own resident tensors.</summary>
    Tensor? Backward(Tensor input, Tensor outputGrad) => Backward(input, outputGrad, StageWeights.Resident);
}
