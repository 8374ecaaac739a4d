namespace FineTune.Offload.Adam;

/// <summary>
/// The per-step constants of the fused AdamW kernel, computed once per step in double precision the way PyTorch
/// does (bias corrections with Python floats) and then rounded to float, as PyTorch rounds a Python scalar
/// multiplied into a float32 tensor.
/// reference: torch/optim/adamw.py, _single_tensor_adamw (PyTorch 1.13):
///   param.mul_(1 - lr * weight_decay)
///   exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
///   exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
///   step_size = lr / (1 - beta1 ** step);  bias_correction2_sqrt = sqrt(1 - beta2 ** step)
///   denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(eps)
///   param.addcdiv_(exp_avg, denom, value=-step_size)
/// </summary>
public readonly record struct AdamWStepScalars(
    float Decay,
    float Beta1,
    float OneMinusBeta1,
    float Beta2,
    float OneMinusBeta2,
    float BiasCorrection2Sqrt,
    float Epsilon,
    float NegativeStepSize,
    float GradientMultiplier)
{
    /// <summary>
    /// Constants for step <paramref name="step"/> (1-based, as PyTorch counts) at learning rate
    /// <paramref name="learningRate"/>; every gradient is multiplied by <paramref name="gradientMultiplier"/>
    /// (1 / loss scale times the clip factor) inside the kernel.
    /// </summary>
    public static AdamWStepScalars For(AdamWOptions options, long step, double learningRate, double gradientMultiplier = 1.0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(step);
        double biasCorrection1 = 1 - Math.Pow(options.Beta1, step);
        double biasCorrection2 = 1 - Math.Pow(options.Beta2, step);
        return new AdamWStepScalars(
            Decay: (float)(1 - learningRate * options.WeightDecay),
            Beta1: (float)options.Beta1,
            OneMinusBeta1: (float)(1 - options.Beta1),
            Beta2: (float)options.Beta2,
            OneMinusBeta2: (float)(1 - options.Beta2),
            BiasCorrection2Sqrt: (float)Math.Sqrt(biasCorrection2),
            Epsilon: (float)options.Epsilon,
            NegativeStepSize: (float)(-(learningRate / biasCorrection1)),
            GradientMultiplier: (float)gradientMultiplier);
    }
}
