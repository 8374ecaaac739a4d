using FineTune.Offload.Adam;
using FineTune.Offload.Optimizer;
using FineTune.IO;
using FineTune.Offload.Tests.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Optimizer;

public sealed class OptimizerStateFileTests
{
    private static readonly long[] s_shapes = { 1000, 2000, 1099 };
    private const int ElementCount = 4099;

    /// <summary>The three parameters in bf16 (weights and gradients), their gradients seeded with <paramref name="seed"/>.</summary>
    private static TestParameters Bf16(ulong seed) => new(s_shapes, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(seed, ElementCount));

    private static PartitionedOptimizerOptions Options(StateTier tier, string directory) => new()
    {
        SubGroupElementCount = 1024,
        Tier = tier,
        NvmeDirectory = directory,
        MaxDegreeOfParallelism = 2,
    };

    private static void Run(PartitionedOptimizer optimizer, TestParameters parameters, int firstStep, int lastStep)
    {
        for (int step = firstStep; step <= lastStep; step++)
        {
            parameters.SetGradients(SeededGradients.ForStep(step, ElementCount));
            optimizer.LearningRate = SeededGradients.LearningRate(step);
            optimizer.Step();
        }
    }

    [Fact]
    public void AResumeThatLoadsItsStatesWritesNoInitialOnes()
    {
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Nvme, swap.Path)))
            Run(a, straight, 1, 10);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(StateTier.Nvme, swap.Path)))
        {
            Assert.True(b.Counters.Snapshot().BytesWritten > 0); // a fresh start writes its initial states
            Run(b, first, 1, 5);
            b.SaveState(checkpoint);
        }
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(StateTier.Nvme, swap.Path) with { StatesLoadedLater = true }))
        {
            Assert.Equal(0, c.Counters.Snapshot().BytesWritten);
            c.LoadState(checkpoint);
            Run(c, resumed, 6, 10);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Theory]
    [InlineData(StateTier.Nvme, StateTier.Nvme)]
    [InlineData(StateTier.Nvme, StateTier.Host)]
    [InlineData(StateTier.Host, StateTier.MemorySwap)]
    public void ResumedRunIsBitIdenticalToAnUninterruptedOne(StateTier savedFrom, StateTier loadedInto)
    {
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        // The resumed optimizer starts from different weights: everything must come from the checkpoint.
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Nvme, swap.Path)))
            Run(a, straight, 1, 10);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(savedFrom, swap.Path)))
        {
            Run(b, first, 1, 5);
            b.SaveState(checkpoint);
        }
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(loadedInto, swap.Path)))
        {
            c.LoadState(checkpoint);
            Assert.Equal(5, c.StepNumber);
            Assert.Equal(first.WeightBytes(), resumed.WeightBytes());
            Run(c, resumed, 6, 10);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Fact]
    public void CorruptedExtentIsDetectedAndNamed()
    {
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using (var a = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Host, swap.Path)))
        {
            Run(a, parameters, 1, 2);
            a.SaveState(checkpoint);
        }
        string data = Path.Combine(checkpoint, OptimizerStateFile.DataFileName);
        byte[] bytes = File.ReadAllBytes(data);
        Assert.Equal(4 * 12 * 1024 + 12 * 3, bytes.Length);
        bytes[2 * 12 * 1024 + 5000] ^= 0x10; // one bit in sub-group 2's m
        File.WriteAllBytes(data, bytes);
        using var b = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Host, swap.Path));
        var error = Assert.Throws<DamagedStatesException>(() => b.LoadState(checkpoint));
        Assert.Contains("extent 2 (sub-group 2, bytes 24576..36864", error.Message);
        Assert.Contains("CRC32C", error.Message);
        Assert.Equal("fails its CRC-32C check in extent 2 (bytes 24576..36864)", error.Problem); // what the resume's damage sentence names
    }

    [Theory]
    [InlineData(1024, 2048, StateTier.Host)]
    [InlineData(2048, 1024, StateTier.Nvme)]
    [InlineData(1024, 3072, StateTier.Nvme)]
    [InlineData(3072, 5120, StateTier.Host)] // one saved extent, then one current sub-group covering all
    public void ResumeWithAnotherSubGroupSizeIsBitIdentical(long savedSize, long loadedSize, StateTier loadedInto)
    {
        // The checkpoint is layout-free: a resume may change sub_group_element_count and continue bit for bit.
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Host, swap.Path) with { SubGroupElementCount = savedSize }))
            Run(a, straight, 1, 8);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(StateTier.Nvme, swap.Path) with { SubGroupElementCount = savedSize }))
        {
            Run(b, first, 1, 4);
            b.SaveState(checkpoint);
        }
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(loadedInto, swap.Path) with { SubGroupElementCount = loadedSize }))
        {
            Assert.NotEqual(savedSize, c.SubGroupElementCount);
            c.LoadState(checkpoint);
            Assert.Equal(4, c.StepNumber);
            Assert.Equal(first.WeightBytes(), resumed.WeightBytes());
            Run(c, resumed, 5, 8);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Theory]
    [InlineData(StateEncoding.Float32Master, 1024)]
    [InlineData(StateEncoding.Bf16Residual, 1024)]
    [InlineData(StateEncoding.Bf16Residual, 3072)]
    public void ResidualMastersResumeBitIdenticalFromEitherEncoding(StateEncoding saved, long loadedSize)
    {
        // Residual masters are half of each master: the other half is the weights, which a resume loads with the model.
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Host, swap.Path)))
            Run(a, straight, 1, 10);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(StateTier.Nvme, swap.Path) with { MasterEncoding = saved }))
        {
            Run(b, first, 1, 5);
            b.SaveState(checkpoint);
            Assert.Contains($"\"state_encoding\": \"{saved.ManifestName()}\"", File.ReadAllText(Path.Combine(checkpoint, OptimizerStateFile.ManifestFileName)));
        }
        resumed.SetWeightBytes(first.WeightBytes());
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(StateTier.Nvme, swap.Path) with
        {
            MasterEncoding = StateEncoding.Bf16Residual, SubGroupElementCount = loadedSize, StatesLoadedLater = true,
        }))
        {
            c.LoadState(checkpoint);
            Assert.Equal(first.WeightBytes(), resumed.WeightBytes());
            Run(c, resumed, 6, 10);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Theory]
    [InlineData(StateTier.Host, 1024)]
    [InlineData(StateTier.Host, 3072)]
    [InlineData(StateTier.Nvme, 1024)]
    public void ResidualMastersLoadIntoWholeMastersCompletedByTheWeights(StateTier loadedInto, long loadedSize)
    {
        // A run that saved residual masters resumes with whole ones (optimizer states in host memory, say): each master
        // is rebuilt from its residual and the weight the model was loaded with, and training goes on bit for bit.
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Host, swap.Path)))
            Run(a, straight, 1, 10);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(StateTier.Nvme, swap.Path) with { MasterEncoding = StateEncoding.Bf16Residual }))
        {
            Run(b, first, 1, 5);
            b.SaveState(checkpoint);
        }
        resumed.SetWeightBytes(first.WeightBytes());
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(loadedInto, swap.Path) with { SubGroupElementCount = loadedSize }))
        {
            Assert.Equal(StateEncoding.Float32Master, c.Options.MasterEncoding);
            c.LoadState(checkpoint);
            Assert.Equal(5, c.StepNumber);
            Assert.Equal(first.WeightBytes(), resumed.WeightBytes());
            Run(c, resumed, 6, 10);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Fact]
    public void ResidualMastersAreRefusedByFp16WeightsNamingWhatToChange()
    {
        // fp16 weights are a rounding of the bf16 ones the residuals complete: no master can be rebuilt from them
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var parameters = Bf16(1);
        using (var a = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Nvme, swap.Path) with { MasterEncoding = StateEncoding.Bf16Residual }))
        {
            Run(a, parameters, 1, 2);
            a.SaveState(checkpoint);
        }
        using var fp16 = new TestParameters(s_shapes, ElementType.Float16, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var b = PartitionedOptimizer.Create(fp16.Parameters, Options(StateTier.Host, swap.Path));
        var error = Assert.Throws<UserErrorException>(() => b.LoadState(checkpoint));
        Assert.Contains("resume with precision bf16 or fp32, on one rank", error.Message);
    }

    [Fact]
    public void AnotherModelIsRefusedNamingTheParameter()
    {
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using (var a = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Host, swap.Path)))
            a.SaveState(checkpoint);
        using var other = new TestParameters(new long[] { 1000, 2001, 1098 }, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var b = PartitionedOptimizer.Create(other.Parameters, Options(StateTier.Host, swap.Path) with { SubGroupElementCount = 2048 });
        var error = Assert.Throws<UserErrorException>(() => b.LoadState(checkpoint));
        Assert.Contains("parameter 1 is 'layers.1.weight' (2000 elements)", error.Message);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ALinkedCheckpointKeepsItsStepWhileTrainingGoesOn(bool recordChecksums)
    {
        // The checkpoint is a hard link to the swap file, not a copy: the optimizer's next writes go to fresh extents,
        // so the checkpoint keeps step 5 while training goes on, and a resume from it continues bit for bit.
        using var swap = new SwapDirectory();
        string checkpoint = Path.Combine(swap.Path, "checkpoint");
        using var straight = Bf16(1);
        using var first = Bf16(1);
        using var resumed = Bf16(99);
        using (var a = PartitionedOptimizer.Create(straight.Parameters, Options(StateTier.Host, swap.Path)))
            Run(a, straight, 1, 10);
        string data = Path.Combine(checkpoint, OptimizerStateFile.DataFileName);
        using (var b = PartitionedOptimizer.Create(first.Parameters, Options(StateTier.Nvme, swap.Path)))
        {
            Run(b, first, 1, 4);
            b.RecordStateChecksums = recordChecksums;
            Run(b, first, 5, 5);
            SavedStates saved = b.SaveState(checkpoint);
            Assert.True(saved.Linked, saved.WhyCopied);
            Assert.Equal(0, saved.CopiedByteCount);
            Assert.Equal(recordChecksums ? 0 : b.StateByteCount, saved.ChecksumReadByteCount); // CRCs kept as written, or read once
            byte[] atSave = ReadUnlocked(data);
            string swapFile = Directory.GetFiles(swap.Path, "*optimizer*").Single();
            Assert.Equal(atSave, ReadUnlocked(swapFile)); // the same file under two names
            b.RecordStateChecksums = false;
            Run(b, first, 6, 7); // every extent rewritten: into a fresh file; the old one keeps only the checkpoint's name
            Assert.Equal(atSave, ReadUnlocked(data));
            string current = Directory.GetFiles(swap.Path, "*optimizer*").Single();
            Assert.NotEqual(atSave, ReadUnlocked(current));
            // a second checkpoint links the fresh file, with CRCs read once since none were kept
            SavedStates again = b.SaveState(Path.Combine(swap.Path, "checkpoint-7"));
            Assert.True(again.Linked);
            Assert.Equal(b.StateByteCount, again.ChecksumReadByteCount);
        }
        using (var c = PartitionedOptimizer.Create(resumed.Parameters, Options(StateTier.Nvme, swap.Path)))
        {
            c.LoadState(checkpoint);
            Assert.Equal(5, c.StepNumber);
            Run(c, resumed, 6, 10);
        }
        Assert.Equal(straight.WeightBytes(), resumed.WeightBytes());
    }

    [Fact]
    public void StatesInHostMemoryAreCopiedAndSaySo()
    {
        using var swap = new SwapDirectory();
        using var parameters = new TestParameters(s_shapes, ElementType.Float32, ElementType.Float32, SeededGradients.Uniform(1, ElementCount));
        using var a = PartitionedOptimizer.Create(parameters.Parameters, Options(StateTier.Host, swap.Path));
        SavedStates saved = a.SaveState(Path.Combine(swap.Path, "checkpoint"));
        Assert.False(saved.Linked);
        Assert.Equal(12L * ElementCount, saved.CopiedByteCount);
        Assert.Equal("the states are in host memory", saved.WhyCopied);
    }

    /// <summary>The file's bytes, read without the shared flock .NET takes (the live swap file holds an exclusive one, and a linked checkpoint is the same file).</summary>
    private static byte[] ReadUnlocked(string path)
    {
        using DirectFile file = DirectFile.Open(path, DirectFileAccess.Read, create: false);
        using var buffer = new AlignedBuffer(file.Length);
        for (long done = 0; done < file.Length;)
            done += RandomAccess.Read(file.Handle, buffer.GetSpan(done, (int)(file.Length - done)), done);
        return buffer.Span.ToArray();
    }
}
