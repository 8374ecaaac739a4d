using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Planning;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

/// <summary>The device AdamW path, run on CPU tensors (the machine has no GPU): same results as PyTorch's AdamW.</summary>
public sealed class DeviceAdamWTests
{
    private const int ElementCount = 4099;

    [Theory]
    [InlineData(5)] // every sub-group on the "device"
    [InlineData(2)] // interleaved with the CPU kernel, as the planner spreads them
    public void HundredStepsWithDeviceSubGroupsMatchPyTorchAdamW(int deviceCount)
    {
        byte[] fixture = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "adamw_reference.bin"));
        var expected = new float[ElementCount];
        Buffer.BlockCopy(fixture, 3 * ElementCount * 4, expected, 0, ElementCount * 4);
        using var directory = new SwapDirectory();
        using var parameters = new TestParameters(new long[] { 1000, 2000, 1099 }, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, new PartitionedOptimizerOptions
        {
            SubGroupElementCount = 1024,
            Tier = StateTier.Nvme,
            NvmeDirectory = directory.Path,
            DeviceSubGroups = InterleavePlanner.Spread(5, deviceCount),
        });
        for (int step = 1; step <= 100; step++)
        {
            parameters.SetGradients(SeededGradients.ForStep(step, ElementCount));
            optimizer.LearningRate = SeededGradients.LearningRate(step);
            optimizer.Step();
        }
        float[] actual = parameters.Weights();
        for (int i = 0; i < ElementCount; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Max(Math.Abs(expected[i]), 0.1), $"element {i}: {actual[i]} vs PyTorch {expected[i]}");
    }

    [Fact]
    public void BFloat16WeightCopyFromTheDevicePathIsTheRoundedMaster()
    {
        using var parameters = new TestParameters(new long[] { 3000 }, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(5, 3000));
        using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, new PartitionedOptimizerOptions
        {
            SubGroupElementCount = 1024,
            DeviceSubGroups = new[] { true, true, true },
        });
        parameters.SetGradients(SeededGradients.ForStep(1, 3000));
        optimizer.Step();
        var masters = new List<float>();
        optimizer.VisitStates((group, states) =>
        {
            unsafe
            {
                for (long i = 0; i < group.ElementCount; i++)
                    masters.Add(((float*)states.Pointer)[i]);
            }
        });
        byte[] bytes = parameters.WeightBytes();
        for (int i = 0; i < 3000; i++)
            Assert.Equal(CpuAdamWTests.NearestEvenBFloat16(masters[i]), BitConverter.ToUInt16(bytes, 2 * i));
    }
}
