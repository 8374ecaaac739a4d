using FineTune.Offload.Adam;
using FineTune.Offload.Bench;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Tests.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Optimizer;

public sealed class PartitionedOptimizerTests
{
    // Three parameters that straddle sub-groups of 2,048 elements: groups 2048, 2048 and a 3-element tail.
    private static readonly long[] s_shapes = { 1000, 2000, 1099 };
    private const int ElementCount = 4099;

    private static PartitionedOptimizerOptions Options(StateTier tier, string? directory = null) => new()
    {
        SubGroupElementCount = 2048,
        Tier = tier,
        NvmeDirectory = directory,
        MaxDegreeOfParallelism = 2,
    };

    [Fact]
    public void PartitionCoversEveryElementOnceInOrder()
    {
        IReadOnlyList<SubGroup> groups = SubGroup.Partition(s_shapes, 2048);
        Assert.Equal(new long[] { 2048, 2048, 3 }, groups.Select(g => g.ElementCount));
        Assert.Equal(new[] { new SubGroupSegment(0, 0, 0, 1000), new SubGroupSegment(1, 0, 1000, 1048) }, groups[0].Segments);
        Assert.Equal(new[] { new SubGroupSegment(1, 1048, 0, 952), new SubGroupSegment(2, 0, 952, 1096) }, groups[1].Segments);
        Assert.Equal(new[] { new SubGroupSegment(2, 1096, 0, 3) }, groups[2].Segments);
    }

    [Theory]
    [InlineData(StateTier.Host)]
    [InlineData(StateTier.Nvme)]
    public void HundredStepsMatchPyTorchAdamW(StateTier tier)
    {
        byte[] fixture = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "adamw_reference.bin"));
        var expected = new float[ElementCount];
        Buffer.BlockCopy(fixture, 3 * ElementCount * 4, expected, 0, ElementCount * 4);
        using var directory = new SwapDirectory();
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, Options(tier, directory.Path));
        for (int step = 1; step <= 100; step++)
        {
            parameters.SetGradients(SeededGradients.ForStep(step, ElementCount));
            optimizer.LearningRate = SeededGradients.LearningRate(step);
            Assert.False(optimizer.Step().Skipped);
        }
        float[] actual = parameters.Weights();
        for (int i = 0; i < ElementCount; i++)
            Assert.True(Math.Abs(actual[i] - expected[i]) <= 1e-6 * Math.Max(Math.Abs(expected[i]), 0.1), $"element {i}: {actual[i]} vs PyTorch {expected[i]}");
        Assert.Equal(100, optimizer.StepNumber);
        if (tier == StateTier.Nvme)
        {
            long stateBytes = (2 * 12 * 2048) + 4096; // two full extents + the 3-element tail rounded to a page
            Assert.Equal(100 * stateBytes, optimizer.Counters.BytesRead);
            Assert.Equal(101 * stateBytes, optimizer.Counters.BytesWritten); // + the initial fill
        }
    }

    [Theory]
    [InlineData(ElementType.BFloat16, ElementType.BFloat16)]
    [InlineData(ElementType.Float16, ElementType.Float32)]
    [InlineData(ElementType.Float32, ElementType.BFloat16)]
    public void NvmeMemorySwapAndHostStatesGiveBitIdenticalResults(ElementType weightType, ElementType gradientType)
    {
        using var directory = new SwapDirectory();
        byte[]? reference = null;
        foreach (StateTier tier in new[] { StateTier.Host, StateTier.MemorySwap, StateTier.Nvme })
        {
            using var parameters = new TestParameters(s_shapes, weightType, gradientType, SeededGradients.Uniform(1, ElementCount));
            using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, Options(tier, directory.Path) with
            {
                AdamW = new AdamWOptions { MaxGradNorm = 5.0, WeightDecay = 0.1 },
            });
            for (int step = 1; step <= 20; step++)
            {
                parameters.SetGradients(SeededGradients.ForStep(step, ElementCount).Select(g => g * 256f).ToArray());
                optimizer.Step(lossScale: 256);
            }
            byte[] weights = parameters.WeightBytes();
            if (reference is null)
                reference = weights;
            else
                Assert.Equal(reference, weights);
        }
    }

    [Fact]
    public void ResidualMastersGiveTheBitsOfWholeMastersAndMoveTenBytesPerElementEachWay()
    {
        using var directory = new SwapDirectory();
        byte[]? reference = null;
        foreach ((StateTier tier, StateEncoding encoding) in new[] { (StateTier.Host, StateEncoding.Float32Master), (StateTier.Nvme, StateEncoding.Float32Master),
            (StateTier.MemorySwap, StateEncoding.Bf16Residual), (StateTier.Nvme, StateEncoding.Bf16Residual) })
        {
            using var parameters = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
            using var optimizer = PartitionedOptimizer.Create(parameters.Parameters, Options(tier, directory.Path) with
            {
                AdamW = new AdamWOptions { MaxGradNorm = 5.0, WeightDecay = 0.1 },
                MasterEncoding = encoding,
            });
            for (int step = 1; step <= 20; step++)
            {
                parameters.SetGradients(SeededGradients.ForStep(step, ElementCount));
                optimizer.Step();
            }
            byte[] weights = parameters.WeightBytes();
            if (reference is null)
                reference = weights;
            else
                Assert.Equal(reference, weights);
            if (tier != StateTier.Host)
            {
                long stateBytes = 2 * encoding.BytesPerElement() * 2048 + 4096; // two full extents + the 3-element tail rounded to a page
                Assert.Equal(20 * stateBytes, optimizer.Counters.BytesRead);
                Assert.Equal(21 * stateBytes, optimizer.Counters.BytesWritten);
            }
        }
    }

    [Fact]
    public void ResidualMastersRefuseWhatCannotHoldThem()
    {
        using var directory = new SwapDirectory();
        using var fp16 = new TestParameters(s_shapes, ElementType.Float16, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        Assert.Contains("bf16", Assert.Throws<ArgumentException>(() => PartitionedOptimizer.Create(fp16.Parameters,
            Options(StateTier.Nvme, directory.Path) with { MasterEncoding = StateEncoding.Bf16Residual })).Message);
        using var bf16 = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
        Assert.Contains("swapped", Assert.Throws<ArgumentException>(() => PartitionedOptimizer.Create(bf16.Parameters,
            Options(StateTier.Host) with { MasterEncoding = StateEncoding.Bf16Residual })).Message);
    }

    [Fact]
    public void NaNOrInfinityInAnyGradientSkipsTheWholeStep()
    {
        using var directory = new SwapDirectory();
        using var clean = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
        using var dirty = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
        using var a = PartitionedOptimizer.Create(clean.Parameters, Options(StateTier.Nvme, directory.Path));
        using var b = PartitionedOptimizer.Create(dirty.Parameters, Options(StateTier.Nvme, directory.Path));
        for (int step = 1; step <= 6; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            clean.SetGradients(g);
            a.Step();
            // Before each real step, a step whose gradients hold one NaN or infinity (in the last sub-group, after
            // the first two would already have been updated) must change nothing.
            float[] bad = (float[])g.Clone();
            bad[ElementCount - 1 - step] = step % 2 == 0 ? float.NaN : float.NegativeInfinity;
            dirty.SetGradients(bad);
            StepResult skipped = b.Step();
            Assert.True(skipped.Skipped);
            Assert.False(double.IsFinite(skipped.GradientNorm));
            dirty.SetGradients(g);
            Assert.False(b.Step().Skipped);
        }
        Assert.Equal(clean.WeightBytes(), dirty.WeightBytes());
        Assert.Equal(6, b.SkippedStepCount);
        Assert.Equal(6, b.StepNumber);
        Assert.Equal(0, a.SkippedStepCount);
    }

    [Fact]
    public void ClippingScalesGradientsByMaxNormOverNorm()
    {
        float[] g = SeededGradients.ForStep(1, ElementCount);
        double norm = Math.Sqrt(g.Sum(x => (double)x * x));
        using var clipped = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var optimizer = PartitionedOptimizer.Create(clipped.Parameters, Options(StateTier.Host) with { AdamW = new AdamWOptions { MaxGradNorm = 1.0 } });
        clipped.SetGradients(g);
        StepResult result = optimizer.Step();
        Assert.Equal(norm, result.GradientNorm, norm * 1e-12);
        Assert.Equal(1.0 / (norm + 1e-6), result.ClipFactor, 1e-15);
        // Step 2 with the same gradients: AdamW is scale-invariant only at step 1, so compare with the reference.
        var reference = new ScalarAdamWReference(SeededGradients.Uniform(1, ElementCount), new AdamWOptions());
        reference.Step(g.Select(x => (float)(x * result.ClipFactor)).ToArray(), 1e-3);
        float[] actual = clipped.Weights();
        for (int i = 0; i < ElementCount; i++)
            Assert.True(Math.Abs(actual[i] - reference.Params[i]) <= 1e-6 * Math.Max(Math.Abs(reference.Params[i]), 0.1), $"element {i}");
    }

    [Fact]
    public void ThousandStepsKeepPoolBytesFixedAndLeakNoLeases()
    {
        using var directory = new SwapDirectory();
        using var parameters = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
        HostMemoryPool pool;
        // Sub-groups of 1,024: four full ones and a 3-element tail, so the three pipeline buffers are reused.
        using (var optimizer = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Nvme, directory.Path) with { SubGroupElementCount = 1024 }))
        {
            pool = optimizer.Pool;
            parameters.SetGradients(SeededGradients.ForStep(1, ElementCount));
            optimizer.Step();
            long reserved = pool.ReservedByteCount, peak = pool.PeakInUseByteCount;
            int leases = pool.OutstandingLeaseCount;
            // 3 full pipeline buffers + 1 tail buffer, exact sizes: 3 x 12,288 + 4,096.
            Assert.Equal(3 * 12_288 + 4_096, reserved);
            Assert.Equal(4, leases);
            for (int step = 2; step <= 1000; step++)
            {
                optimizer.Step();
                Assert.Equal(reserved, pool.ReservedByteCount);
                Assert.Equal(peak, pool.PeakInUseByteCount);
                Assert.Equal(leases, pool.OutstandingLeaseCount);
            }
            Assert.Equal(1000, optimizer.StepNumber);
        }
        Assert.Equal(0, pool.OutstandingLeaseCount);
        Assert.Empty(Directory.GetFiles(directory.Path));
    }

    [Fact]
    public void BaselineAllocatorGivesTheSameBitsWithMoreHostMemory()
    {
        using var directory = new SwapDirectory();
        var results = new List<(byte[] Weights, long Reserved)>();
        foreach (PoolAllocatorKind kind in new[] { PoolAllocatorKind.Exact, PoolAllocatorKind.Baseline })
        {
            using var parameters = new TestParameters(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, ElementCount));
            PartitionedOptimizerOptions options = Options(StateTier.Nvme, directory.Path) with { Allocator = kind, SubGroupElementCount = 1024 };
            using var optimizer = kind == PoolAllocatorKind.Baseline
                ? ZeroInfinityBaseline.Create(parameters.Parameters, options)
                : PartitionedOptimizer.Create(parameters.Parameters, options);
            for (int step = 1; step <= 5; step++)
            {
                parameters.SetGradients(SeededGradients.ForStep(step, ElementCount));
                optimizer.Step();
            }
            results.Add((parameters.WeightBytes(), optimizer.Pool.ReservedByteCount));
        }
        Assert.Equal(results[0].Weights, results[1].Weights);
        // Exact: 3 x 12,288 + 4,096. Baseline: 3 states + 1 tail + fp32 staging + overflow temporary, each pow2(12,288) = 16,384.
        Assert.Equal(3 * 12_288 + 4_096, results[0].Reserved);
        Assert.Equal(6 * 16_384, results[1].Reserved);
    }

    [Fact]
    public void PlanOverTheHostBudgetIsRefusedBeforeAnythingRuns()
    {
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, new float[ElementCount]);
        var error = Assert.Throws<UserErrorException>(() => PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Host) with { HostBudgetByteCount = 50_000 }));
        Assert.Contains("host_gb", error.Message);
    }
}
