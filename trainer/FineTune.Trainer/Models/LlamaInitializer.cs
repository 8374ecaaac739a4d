using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Seeded initialisation for from-scratch runs, as transformers' LlamaPreTrainedModel._init_weights: linear and
/// embedding weights ~ normal(0, initializer_range), biases zero, RMSNorm weights one, and the embedding row of
/// pad_token_id zeroed (nn.Embedding padding_idx). Values are drawn in float32 on the CPU from one generator in
/// the stable parameter order, then converted, so a seed gives the same model on every device and dtype.
/// reference: transformers modeling_llama.py LlamaPreTrainedModel._init_weights.
/// </summary>
public static class LlamaInitializer
{
    public static Dictionary<string, Tensor> Initialize(LlamaConfig config, long seed, DType dtype, Device device)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        using var generator = new Generator(seed);
        foreach (ParameterSpec spec in LlamaTensorNames.All(config))
        {
            using (TensorScope.Enter())
            {
                Tensor host;
                if (spec.Name.EndsWith("norm.weight", StringComparison.Ordinal))
                    host = Ones(spec.Shape);
                else if (spec.Name.EndsWith(".bias", StringComparison.Ordinal))
                    host = Zeros(spec.Shape);
                else
                    host = Randn(spec.Shape, generator) * config.InitializerRange;
                if (spec.Name == LlamaTensorNames.Embedding && config.PadTokenId is int pad && pad >= 0 && pad < config.VocabSize)
                    host.Narrow(0, pad, 1).FillInPlace(0.0);
                result[spec.Name] = host.To(device, dtype).MoveToOuterScope();
            }
        }
        return result;
    }
}
