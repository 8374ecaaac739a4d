using FineTune.Torch;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Compares libtorch's analytic gradients with central finite differences in float64.
/// The scalar checked is L = sum(f(inputs) * R) with a fixed random R, so every output element contributes
/// with its own weight. reference: numerical gradient (f(x + h) - f(x - h)) / 2h, error O(h^2); h = 1e-6.
/// </summary>
internal static class GradientChecker
{
    private const double Step = 1e-6;

    /// <summary>Returns the largest relative error |analytic - numeric| / max(|analytic|, |numeric|, 1e-3) over all inputs.</summary>
    public static double MaxRelativeError(Func<Tensor[], Tensor> f, params double[][] inputValues) =>
        MaxRelativeError(f, inputValues.Select(v => new[] { (long)v.Length }).ToArray(), inputValues);

    public static double MaxRelativeError(Func<Tensor[], Tensor> f, long[][] shapes, double[][] inputValues)
    {
        using var scope = TensorScope.Enter();
        var inputs = new Tensor[inputValues.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            inputs[i] = Torch.FromArray(inputValues[i], shapes[i]);
            inputs[i].RequiresGrad = true;
        }
        var output = f(inputs);
        using var generator = new Generator(7);
        var weights = Torch.Randn(output.Shape, generator, DType.Float64);
        var loss = (output * weights).Sum();
        var analytic = Torch.Grad([loss], inputs, allowUnused: true);

        var worst = 0.0;
        for (var i = 0; i < inputs.Length; i++)
        {
            var a = analytic[i]?.ToArray<double>() ?? new double[inputValues[i].Length];
            for (var e = 0; e < inputValues[i].Length; e++)
            {
                var numeric = (Evaluate(f, shapes, inputValues, i, e, Step, weights) - Evaluate(f, shapes, inputValues, i, e, -Step, weights)) / (2 * Step);
                var denominator = Math.Max(Math.Max(Math.Abs(a[e]), Math.Abs(numeric)), 1e-3);
                worst = Math.Max(worst, Math.Abs(a[e] - numeric) / denominator);
            }
        }
        return worst;
    }

    private static double Evaluate(Func<Tensor[], Tensor> f, long[][] shapes, double[][] values, int input, int element, double delta, Tensor weights)
    {
        using var scope = TensorScope.Enter();
        using var noGrad = Torch.NoGrad();
        var inputs = new Tensor[values.Length];
        for (var i = 0; i < inputs.Length; i++)
        {
            var copy = (double[])values[i].Clone();
            if (i == input)
            {
                copy[element] += delta;
            }
            inputs[i] = Torch.FromArray(copy, shapes[i]);
        }
        return (f(inputs) * weights).Sum().Item<double>();
    }

    /// <summary>Deterministic values in [low, high) (a linear congruential sequence, so tests do not depend on libtorch's RNG).</summary>
    public static double[] Values(int count, double low, double high, int seed)
    {
        var values = new double[count];
        var state = (uint)(seed * 2654435761u + 12345u);
        for (var i = 0; i < count; i++)
        {
            state = state * 1664525u + 1013904223u;
            values[i] = low + (high - low) * (state >> 8) / (double)(1 << 24);
        }
        return values;
    }
}
