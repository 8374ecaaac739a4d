using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// libtorch's AdamW against the update written out by hand.
/// reference: Loshchilov &amp; Hutter 2019, algorithm 2, in PyTorch's form (torch/optim/adamw.py):
///   p -= lr * wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
///   p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
/// </summary>
public sealed class TorchAdamWTests
{
    [Fact]
    public void FirstStepMovesEachParameterByTheLearningRate()
    {
        using var scope = TensorScope.Enter();
        var p = Torch.FromArray(new double[] { 1.0, -2.0, 0.5 });
        p.RequiresGrad = true;
        using var optimizer = new TorchAdamW([p], learningRate: 0.1, weightDecay: 0.0, epsilon: 0.0);
        p.Grad = Torch.FromArray(new double[] { 0.3, -7.0, 1e-4 });
        optimizer.Step();
        // At t = 1, m_hat = g and v_hat = g^2, so the step is lr * g / |g| = 0.1 * sign(g).
        var values = p.ToArray<double>();
        Assert.Equal(0.9, values[0], 12);
        Assert.Equal(-1.9, values[1], 12);
        Assert.Equal(0.4, values[2], 12);
    }

    [Fact]
    public void ThreeStepsMatchHandComputedAdamW()
    {
        using var scope = TensorScope.Enter();
        double lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.1;
        var expected = new[] { 1.0, -2.0 };
        var p = Torch.FromArray((double[])expected.Clone());
        p.RequiresGrad = true;
        using var optimizer = new TorchAdamW([p], lr, beta1, beta2, eps, weightDecay);
        Assert.Equal(lr, optimizer.LearningRate);
        var m = new double[2];
        var v = new double[2];
        double[][] gradients = [[0.5, -0.25], [0.1, 0.3], [-0.4, 0.2]];
        for (var t = 1; t <= 3; t++)
        {
            if (t == 3)
            {
                lr = 0.005;
                optimizer.LearningRate = lr;
            }
            p.Grad = Torch.FromArray(gradients[t - 1]);
            optimizer.Step();
            for (var i = 0; i < 2; i++)
            {
                var g = gradients[t - 1][i];
                expected[i] -= lr * weightDecay * expected[i];
                m[i] = beta1 * m[i] + (1 - beta1) * g;
                v[i] = beta2 * v[i] + (1 - beta2) * g * g;
                var denominator = Math.Sqrt(v[i]) / Math.Sqrt(1 - Math.Pow(beta2, t)) + eps;
                expected[i] -= lr / (1 - Math.Pow(beta1, t)) * m[i] / denominator;
            }
            var actual = p.ToArray<double>();
            Assert.Equal(expected[0], actual[0], 12);
            Assert.Equal(expected[1], actual[1], 12);
        }
        optimizer.ZeroGrad();
    }
}
