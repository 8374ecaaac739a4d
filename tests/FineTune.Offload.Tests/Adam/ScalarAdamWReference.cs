using FineTune.Offload.Adam;

namespace FineTune.Offload.Tests.Adam;

/// <summary>
/// PyTorch's AdamW written out element by element in double precision, as the independent reference for the
/// fused float kernel. reference: torch/optim/adamw.py, _single_tensor_adamw (PyTorch 1.13).
/// The per-step scalars are rounded to float as PyTorch rounds a Python scalar applied to a float32 tensor
/// (1 - lr*wd, 1 - beta, lr / bias_correction1, sqrt(bias_correction2)); the rounding of 1 - lr*wd alone moves
/// parameters by ~3e-8 relative per step, which a pure-double reference would count as kernel error.
/// Everything else (moments, sqrt, division, parameters) is carried in double.
/// </summary>
internal sealed class ScalarAdamWReference
{
    private readonly AdamWOptions _options;
    private readonly double[] _m;
    private readonly double[] _v;
    private long _step;

    public ScalarAdamWReference(float[] initial, AdamWOptions options)
    {
        Params = initial.Select(x => (double)x).ToArray();
        _m = new double[initial.Length];
        _v = new double[initial.Length];
        _options = options;
    }

    public double[] Params { get; }

    public void Step(float[] gradients, double learningRate)
    {
        _step++;
        double b1 = (float)_options.Beta1, b2 = (float)_options.Beta2;
        double oneMinusB1 = (float)(1 - _options.Beta1), oneMinusB2 = (float)(1 - _options.Beta2);
        double bc1 = 1 - Math.Pow(_options.Beta1, _step), bc2 = 1 - Math.Pow(_options.Beta2, _step);
        double decay = (float)(1 - learningRate * _options.WeightDecay);
        double stepSize = (float)(learningRate / bc1);
        double bc2Sqrt = (float)Math.Sqrt(bc2);
        double eps = (float)_options.Epsilon;
        for (int i = 0; i < Params.Length; i++)
        {
            double g = gradients[i];
            Params[i] *= decay;
            _m[i] = b1 * _m[i] + oneMinusB1 * g;
            _v[i] = b2 * _v[i] + oneMinusB2 * g * g;
            double denom = Math.Sqrt(_v[i]) / bc2Sqrt + eps;
            Params[i] -= stepSize * (_m[i] / denom);
        }
    }
}
