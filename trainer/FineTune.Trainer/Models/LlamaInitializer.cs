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
    public static Dictionary<string, Tensor> Initialize(LlamaConfig config, long seed, DType dtype, Device device) =>
        Stream(config, seed, dtype, device).ToDictionary(p => p.Spec.Name, p => p.Tensor, StringComparer.Ordinal);

    /// <summary>
    /// The same weights as <see cref="Initialize"/>, one tensor at a time in the stable parameter order (each in the
    /// caller's current scope, as Initialize's), so a model larger than host memory can be generated straight into a parameter store
    /// (the LoRA engine's base on NVMe) while holding one tensor and its float32 draw at a time.
    /// </summary>
    public static IEnumerable<(ParameterSpec Spec, Tensor Tensor)> Stream(LlamaConfig config, long seed, DType dtype, Device device)
    {
        using var generator = new Generator(seed);
        foreach (ParameterSpec spec in LlamaTensorNames.All(config))
        {
            Tensor tensor;
            using (TensorScope.Enter())
            {
                Tensor host;
                if (spec.Name.EndsWith("norm.weight", StringComparison.Ordinal))
                    host = Ones(spec.Shape);
                else if (spec.Name.EndsWith(".bias", StringComparison.Ordinal))
                    host = Zeros(spec.Shape);
                else
                    host = Randn(spec.Shape, generator).MulInPlace(config.InitializerRange); // in place: one float32 draw alive, not two
                if (spec.Name == LlamaTensorNames.Embedding && config.PadTokenId is int pad && pad >= 0 && pad < config.VocabSize)
                    host.Narrow(0, pad, 1).FillInPlace(0.0);
                tensor = host.To(device, dtype).MoveToOuterScope();
            }
            yield return (spec, tensor);
        }
    }
}
