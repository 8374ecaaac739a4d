using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Tests.Adam;
using FineTune.Torch;
using Xunit;

namespace FineTune.Offload.Tests.Optimizer;

public sealed class TensorParameterTests
{
    [Fact]
    public void TensorBoundParametersAreUpdatedInPlace()
    {
        float[] initial = SeededGradients.Uniform(1, 3000);
        float[] g = SeededGradients.ForStep(1, 3000);
        using var scope = TensorScope.Enter();
        Tensor weight = Torch.Torch.FromArray(initial).To(DType.BFloat16);
        Tensor gradient = Torch.Torch.FromArray(g).To(DType.BFloat16);
        using var optimizer = PartitionedOptimizer.Create(new[] { HostParameter.FromTensors("w", weight, gradient) }, new PartitionedOptimizerOptions { SubGroupElementCount = 1024 });
        Assert.Equal(ElementType.BFloat16, optimizer.Parameters[0].WeightType);
        optimizer.Step();
        // Step 1 of AdamW moves each weight by lr * sign(g) (m/sqrt(v) = g/|g| after bias correction), decay aside.
        float[] after = weight.To(DType.Float32).ToArray<float>();
        for (int i = 0; i < 3000; i++)
        {
            float master = LowPrecision.FromBFloat16(LowPrecision.ToBFloat16(initial[i]));
            float gRounded = LowPrecision.FromBFloat16(LowPrecision.ToBFloat16(g[i]));
            double expected = master * (1 - 1e-3 * 0.01) - 1e-3 * Math.Sign(gRounded);
            Assert.Equal(LowPrecision.ToBFloat16((float)expected), LowPrecision.ToBFloat16(after[i]));
        }
        optimizer.ZeroGrad();
        Assert.All(gradient.To(DType.Float32).ToArray<float>(), x => Assert.Equal(0f, x));
    }
}
