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
    public static ParameterLayout For(LlamaConfig config, ElementType weightType, long subGroupElementCount)
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
        return new ParameterLayout(specs.Select(s => new LayoutParameter(s.Name, s.Shape)).ToList(), stages, weightType, subGroupElementCount);
    }
}
