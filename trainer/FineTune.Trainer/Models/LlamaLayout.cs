using FineTune.Offload.Adam;
using FineTune.Offload.Parameters;

namespace FineTune.Trainer.Models;

/// <summary>
/// The flat <see cref="ParameterLayout"/> of a Llama-family model, from its config alone (so `finetune plan` and the
/// engine compute the same one without loading weights): the parameters in <see cref="LlamaTensorNames.All"/> order,
/// and the stages of <see cref="LlamaModel.Stages"/> — embedding, each decoder layer, final norm, LM head (a tied head
/// computes with the embedding's weight and owns none).
/// </summary>
public static class LlamaLayout
{
    /// <param name="config">The model's shape.</param>
    /// <param name="weightType">The low-precision weights' type.</param>
    /// <param name="subGroupElementCount">Requested sub-group size.</param>
    /// <param name="edgeBlockElementCount">
    /// An embedding or LM head weight larger than this is computed in row blocks of about this many elements (0: never;
    /// -1: automatically, when it is more than twice the largest decoder layer: blocks of half a layer).
    /// </param>
    public static ParameterLayout For(LlamaConfig config, ElementType weightType, long subGroupElementCount, long edgeBlockElementCount = 0)
    {
        IReadOnlyList<ParameterSpec> specs = LlamaTensorNames.All(config);
        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < specs.Count; i++)
            index[specs[i].Name] = i;
        var stages = new List<LayoutStage> { new([0], [0]) { IsEdge = true } };
        for (int layer = 0; layer < config.LayerCount; layer++)
        {
            int[] own = LlamaTensorNames.Layer(config, layer).Select(s => index[s.Name]).ToArray();
            stages.Add(new LayoutStage(own, own));
        }
        int norm = index[LlamaTensorNames.FinalNorm];
        stages.Add(new LayoutStage([norm], [norm]));
        stages.Add(config.TieWordEmbeddings
            ? new LayoutStage([], [0]) { IsEdge = true }
            : new LayoutStage([index[LlamaTensorNames.LmHead]], [index[LlamaTensorNames.LmHead]]) { IsEdge = true });
        if (edgeBlockElementCount < 0)
        {
            long layer = config.LayerCount == 0 ? 0 : LlamaTensorNames.Layer(config, 0).Sum(s => s.ElementCount);
            long edge = (long)config.VocabSize * config.HiddenSize;
            edgeBlockElementCount = layer > 0 && edge > 2 * layer ? layer / 2 : 0;
        }
        return new ParameterLayout(specs.Select(s => new LayoutParameter(s.Name, s.Shape)).ToList(), stages, weightType, subGroupElementCount, edgeBlockElementCount);
    }
}
