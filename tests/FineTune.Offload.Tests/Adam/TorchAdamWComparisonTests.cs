using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Tests.Optimizer;
using FineTune.Torch;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

/// <summary>The partitioned optimizer against libtorch's own torch::optim::AdamW, through the torch binding.</summary>
public sealed class TorchAdamWComparisonTests
{
    private const int ElementCount = 4099;

    [Fact]
    public void HundredStepsWithStatesOnNvmeMatchLibtorchAdamW()
    {
        float[] initial = SeededGradients.Uniform(1, ElementCount);
        using var scope = TensorScope.Enter();
        using Tensor parameter = Torch.Torch.FromArray(initial);
        parameter.RequiresGrad = true;
        using var torchAdamW = new TorchAdamW(new[] { parameter });
        using var directory = new SwapDirectory();
        using var parameters = new TestParameters(new long[] { 1000, 2000, 1099 }, ElementType.Float32, ElementType.Float32, initial);
        using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, new PartitionedOptimizerOptions
        {
            SubGroupElementCount = 1024,
            Tier = StateTier.Nvme,
            NvmeDirectory = directory.Path,
        });
        for (int step = 1; step <= 100; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            using (Tensor gradient = Torch.Torch.FromArray(g))
                parameter.Grad = gradient;
            torchAdamW.LearningRate = SeededGradients.LearningRate(step);
            torchAdamW.Step();
            parameters.SetGradients(g);
            optimizer.LearningRate = SeededGradients.LearningRate(step);
            optimizer.Step();
        }
        float[] expected = parameter.ToArray<float>();
        float[] actual = parameters.Weights();
        for (int i = 0; i < ElementCount; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Max(Math.Abs(expected[i]), 0.1), $"element {i}: {actual[i]} vs libtorch {expected[i]}");
        Assert.True(actual.Zip(initial).Max(p => Math.Abs(p.First - p.Second)) > 0.02f);
    }
}
