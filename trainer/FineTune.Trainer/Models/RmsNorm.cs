using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// RMSNorm as transformers' LlamaRMSNorm computes it: the variance in float32 whatever the input dtype, the
/// normalised input cast back to the input dtype, then multiplied by the weight (weight * normed, in that order,
/// which matters for bf16 rounding).
/// reference: transformers models/llama/modeling_llama.py LlamaRMSNorm.forward.
/// </summary>
internal static class RmsNorm
{
    /// <summary>x (..., C), weight (C) -> (..., C) in x's dtype.</summary>
    public static Tensor Apply(Tensor x, Tensor weight, double eps)
    {
        DType inputType = x.DType;
        Tensor x32 = inputType == DType.Float32 || inputType == DType.Float64 ? x : x.To(DType.Float32);
        Tensor variance = x32.Pow(2).Mean([-1], keepDim: true);
        Tensor normed = x32 * (variance + eps).Rsqrt();
        if (normed.DType != inputType)
            normed = normed.To(inputType);
        return weight * normed;
    }
}
