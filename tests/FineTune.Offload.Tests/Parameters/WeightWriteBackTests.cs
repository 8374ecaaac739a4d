using FineTune.Offload.Rings;
using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Parameters;
using FineTune.Offload.Tests.Adam;
using FineTune.Offload.Tests.Optimizer;
using Xunit;

namespace FineTune.Offload.Tests.Parameters;

/// <summary>
/// The optimizer's weight write-back onto a weight file: after Create the file holds the initial weights, and after
/// every step exactly the bits an identical optimizer without write-back wrote into its parameters' memory (whose
/// own weights the write-back run never touches); sub-groups are rounded to whole pages of weights; Rent, Commit
/// and Flush move the bytes the counters say and refuse misuse.
/// </summary>
public sealed class WeightWriteBackTests
{
    // Three parameters that straddle sub-groups: 4,099 elements, the last sub-group a short tail.
    private static readonly long[] s_shapes = [1000, 2000, 1099];
    private const int ElementCount = 4099;

    [Theory]
    [InlineData(1, null, 1024)]
    [InlineData(1024, null, 1024)]
    [InlineData(1025, null, 2048)]
    [InlineData(1, ElementType.Float32, 1024)]
    [InlineData(1025, ElementType.Float32, 2048)]
    [InlineData(1, ElementType.BFloat16, 2048)]
    [InlineData(2048, ElementType.BFloat16, 2048)]
    [InlineData(2049, ElementType.BFloat16, 4096)]
    [InlineData(3000, ElementType.Float16, 4096)]
    public void SubGroupsRoundToWholePagesOfWeights(long requested, ElementType? type, long expected) =>
        Assert.Equal(expected, PartitionedOptimizer.RoundSubGroupElementCount(requested, type));

    [Theory]
    [InlineData(ElementType.Float32, ElementType.Float32, 1500, 2048, StateTier.Host)]
    [InlineData(ElementType.BFloat16, ElementType.BFloat16, 1500, 2048, StateTier.Host)]
    [InlineData(ElementType.BFloat16, ElementType.Float32, 3000, 4096, StateTier.Host)]
    [InlineData(ElementType.BFloat16, ElementType.BFloat16, 1500, 2048, StateTier.Nvme)]
    public unsafe void FileHoldsTheInitialWeightsThenExactlyWhatResidentTrainingWrites(
        ElementType weightType, ElementType gradientType, long requestedSubGroup, long roundedSubGroup, StateTier tier)
    {
        using var directory = new SwapDirectory();
        float[] initial = SeededGradients.Uniform(1, ElementCount);
        PartitionedOptimizerOptions options = new()
        {
            SubGroupElementCount = requestedSubGroup,
            Tier = tier,
            NvmeDirectory = directory.Path,
            MaxDegreeOfParallelism = 2,
            AdamW = new AdamWOptions { MaxGradNorm = 5.0, WeightDecay = 0.1 },
        };
        using var resident = new TestParameters(s_shapes, weightType, gradientType, initial);
        using var offloaded = new TestParameters(s_shapes, weightType, gradientType, initial);
        byte[] initialBytes = offloaded.WeightBytes();

        long subGroup = PartitionedOptimizer.RoundSubGroupElementCount(requestedSubGroup, weightType);
        Assert.Equal(roundedSubGroup, subGroup);
        using WeightFile file = WeightFile.Create(directory.Path, weightType, ElementCount, IoEngineKind.Threads);
        var plan = new PoolPlan();
        WeightWriteBack.AddToPlan(plan, subGroup, weightType);
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        var counters = new TransferCounters();
        using var writeBack = new WeightWriteBack(file, pool, counters);

        using var reference = PartitionedOptimizer.Create(resident.Parameters, options);
        using var optimizer = PartitionedOptimizer.Create(offloaded.Parameters, options with { WeightWriteBack = writeBack });
        Assert.Equal(roundedSubGroup, optimizer.SubGroupElementCount);
        Assert.All(optimizer.SubGroups, g => Assert.Equal(0, g.FirstElement * weightType.ByteCount() % HostAlignment.PageByteCount));

        // After Create: the initial weights (bf16: the input bits, re-rounded from the same fp32 masters).
        Assert.Equal(initialBytes, WeightPattern.ReadAll(file));
        Assert.Equal((long)ElementCount * weightType.ByteCount(), counters.BytesWritten);

        for (int step = 1; step <= 3; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            resident.SetGradients(g);
            offloaded.SetGradients(g);
            reference.LearningRate = optimizer.LearningRate = SeededGradients.LearningRate(step);
            Assert.False(reference.Step().Skipped);
            Assert.False(optimizer.Step().Skipped);
            byte[] expected = resident.WeightBytes();
            Assert.NotEqual(initialBytes, expected);
            Assert.Equal(expected, WeightPattern.ReadAll(file));
            Assert.Equal((step + 1L) * ElementCount * weightType.ByteCount(), counters.BytesWritten);
        }
        // The write-back run never writes the parameters' own weights.
        Assert.Equal(initialBytes, offloaded.WeightBytes());
    }

    [Theory]
    [InlineData(ElementType.Float32)]
    [InlineData(ElementType.BFloat16)]
    public void MastersStartedFromTheWeightFileTrainLikeMastersStartedFromMemory(ElementType weightType)
    {
        // A model opened lazily: its weights go to the file first, and the parameters carry no weight memory at all.
        using var directory = new SwapDirectory();
        float[] initial = SeededGradients.Uniform(2, ElementCount);
        var options = new PartitionedOptimizerOptions { SubGroupElementCount = 2048, MaxDegreeOfParallelism = 2 };
        using var resident = new TestParameters(s_shapes, weightType, ElementType.Float32, initial);
        using var source = new TestParameters(s_shapes, weightType, ElementType.Float32, initial);
        using WeightFile file = WeightFile.Create(directory.Path, weightType, ElementCount, IoEngineKind.Threads);
        WeightPattern.WriteBytes(file, source.WeightBytes());
        var plan = new PoolPlan();
        WeightWriteBack.AddToPlan(plan, 2048, weightType);
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        var counters = new TransferCounters();
        using var writeBack = new WeightWriteBack(file, pool, counters);
        using var window = new AlignedBuffer(2048 * 4 + HostAlignment.PageByteCount);
        var weightless = source.Parameters.Select(p => p with { Weight = 0 }).ToList();

        Assert.Throws<ArgumentException>(() => PartitionedOptimizer.Create(weightless, options with { WeightWriteBack = writeBack }));
        // both start from the weights as stored (bf16: the rounded values, not TestParameters' fp32 initial masters)
        using var reference = PartitionedOptimizer.Create(resident.Parameters.Select(p => p with { InitialMaster = 0 }).ToList(), options);
        using var optimizer = PartitionedOptimizer.Create(weightless, options with
        {
            WeightWriteBack = writeBack,
            InitialMasters = (group, master) => file.ReadAsFloat32(group.FirstElement, group.ElementCount, master, window),
        });
        Assert.Null(optimizer.Options.InitialMasters);
        Assert.Equal(0, counters.BytesWritten); // the file already held the weights: Create wrote nothing
        for (int step = 1; step <= 3; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            resident.SetGradients(g);
            source.SetGradients(g);
            Assert.False(reference.Step().Skipped);
            Assert.False(optimizer.Step().Skipped);
            Assert.Equal(resident.WeightBytes(), WeightPattern.ReadAll(file));
        }
    }

    [Fact]
    public void AWriteBackOfAnotherTypeThanTheWeightsIsRefused()
    {
        using var directory = new SwapDirectory();
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        var plan = new PoolPlan();
        WeightWriteBack.AddToPlan(plan, 2048, ElementType.BFloat16);
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        using var writeBack = new WeightWriteBack(file, pool, new TransferCounters());
        Assert.Throws<ArgumentException>(() => PartitionedOptimizer.Create(parameters.Parameters, new PartitionedOptimizerOptions
        {
            SubGroupElementCount = 2048,
            WeightWriteBack = writeBack,
        }));
    }

    [Fact]
    public unsafe void RentCommitFlushWritesEachSubGroupAndCountsItsBytes()
    {
        using var directory = new SwapDirectory();
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        var plan = new PoolPlan();
        WeightWriteBack.AddToPlan(plan, 2048, ElementType.BFloat16, bufferCount: 2);
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        var counters = new TransferCounters();
        using var writeBack = new WeightWriteBack(file, pool, counters);
        Assert.Equal(ElementType.BFloat16, writeBack.WeightType);
        Assert.Equal(2, pool.OutstandingLeaseCount);

        IReadOnlyList<SubGroup> groups = SubGroup.Partition([ElementCount], 2048); // 2048, 2048, 3
        for (int pass = 0; pass < 2; pass++)
        {
            foreach (SubGroup group in groups)
            {
                var elements = (ushort*)writeBack.Rent(group);
                for (long k = 0; k < group.ElementCount; k++)
                    elements[k] = WeightPattern.Bits(group.FirstElement + k, seed: pass);
                writeBack.Commit(group);
            }
            writeBack.Flush();
            Assert.Equal((pass + 1L) * ElementCount * 2, counters.BytesWritten);
            writeBack.Flush(); // nothing left: no more bytes
            Assert.Equal((pass + 1L) * ElementCount * 2, counters.BytesWritten);
            byte[] bytes = WeightPattern.ReadAll(file);
            fixed (byte* pointer = bytes)
                Assert.Equal(-1, WeightPattern.FirstMismatch((nint)pointer, 0, ElementCount, seed: pass));
        }
        Assert.Equal(0, counters.BytesRead);
    }

    [Fact]
    public void CommitWithoutTheMatchingRentAndOversizedGroupsAreRefused()
    {
        using var directory = new SwapDirectory();
        using WeightFile file = WeightFile.Create(directory.Path, ElementType.BFloat16, ElementCount, IoEngineKind.Threads);
        var plan = new PoolPlan();
        WeightWriteBack.AddToPlan(plan, 2048, ElementType.BFloat16);
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        var counters = new TransferCounters();
        using var writeBack = new WeightWriteBack(file, pool, counters);
        IReadOnlyList<SubGroup> groups = SubGroup.Partition([ElementCount], 2048);

        Action commitFirst = () => writeBack.Commit(groups[0]), commitSecond = () => writeBack.Commit(groups[1]);
        Assert.Throws<InvalidOperationException>(commitFirst);
        writeBack.Rent(groups[0]);
        Assert.Throws<InvalidOperationException>(commitSecond);
        // 4,096 bf16 elements need 8,192 bytes; the buffers hold one 4 KiB page.
        IReadOnlyList<SubGroup> large = SubGroup.Partition([ElementCount], 4096);
        Assert.Throws<InvalidOperationException>(() => writeBack.Rent(large[0]));
        writeBack.Flush();
        Assert.Equal(0, counters.BytesWritten);

        using var empty = HostMemoryPool.Create(new PoolPlan(), long.MaxValue);
        Assert.Throws<ArgumentException>(() => new WeightWriteBack(file, empty, counters));
    }
}
