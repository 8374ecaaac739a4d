using System.Runtime.InteropServices;
using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>
/// Every collective over loopback Gloo with 2 and 3 ranks, values checked exactly: each rank's input is a small
/// integer pattern of its rank, so every sum is exact in float32 and the expected result is computed here
/// independently of the order the backend reduces in.
/// </summary>
public sealed class CollectiveTests
{
    private const int N = 1000;

    public CollectiveTests()
    {
        Assert.True(ProcessGroup.IsBackendAvailable(DistributedBackend.Gloo), "the shim was built without Gloo: install libgloo-dev and run ./build.sh");
    }

    /// <summary>Rank r's element i: (r + 1) * (i % 7 + 1).</summary>
    private static float[] Pattern(int rank, int count) => Enumerable.Range(0, count).Select(i => (float)((rank + 1) * (i % 7 + 1))).ToArray();

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void AllReduceSumsEveryRanksTensorInPlace(int worldSize)
    {
        float[] expected = Enumerable.Range(0, N).Select(i => (float)(worldSize * (worldSize + 1) / 2 * (i % 7 + 1))).ToArray();
        LoopbackRanks.RunAll(worldSize, group =>
        {
            using Tensor t = Torch.FromArray<float>(Pattern(group.Rank, N), [N]);
            group.AllReduce(t);
            Assert.Equal(expected, t.ToArray<float>());
            using Tensor m = Torch.FromArray<float>(Pattern(group.Rank, N), [N]);
            group.AllReduce(m, ReduceOp.Max);
            Assert.Equal(Pattern(worldSize - 1, N), m.ToArray<float>());
        });
    }

    [Fact]
    public unsafe void AllReduceWorksOnAViewOverMemoryFineTuneOwns()
    {
        LoopbackRanks.RunAll(2, group =>
        {
            // As the optimizer's pool hands out page-aligned host buffers and views them as tensors.
            float* buffer = (float*)NativeMemory.AlignedAlloc(N * sizeof(float), 4096);
            try
            {
                Pattern(group.Rank, N).CopyTo(new Span<float>(buffer, N));
                using (Tensor view = Torch.FromPointer((IntPtr)buffer, [N], DType.Float32))
                    group.AllReduce(view);
                for (int i = 0; i < N; i++)
                    Assert.Equal(3f * (i % 7 + 1), buffer[i]);
            }
            finally
            {
                NativeMemory.AlignedFree(buffer);
            }
        });
    }

    [Fact]
    public void BroadcastCopiesTheRootsTensorToEveryRank()
    {
        LoopbackRanks.RunAll(3, group =>
        {
            using Tensor t = Torch.FromArray<float>(Pattern(group.Rank, N), [N]);
            group.Broadcast(t, root: 1);
            Assert.Equal(Pattern(1, N), t.ToArray<float>());
        });
    }

    [Fact]
    public void ReduceLeavesTheSumOnTheRoot()
    {
        LoopbackRanks.RunAll(3, group =>
        {
            using Tensor t = Torch.FromArray<float>(Pattern(group.Rank, N), [N]);
            group.Reduce(t, root: 2);
            if (group.Rank == 2)
                Assert.Equal(Enumerable.Range(0, N).Select(i => 6f * (i % 7 + 1)).ToArray(), t.ToArray<float>());
        });
    }

    [Theory]
    [InlineData(AllGatherMethod.BroadcastPerShard, 2)]
    [InlineData(AllGatherMethod.BroadcastPerShard, 3)]
    [InlineData(AllGatherMethod.GlooAllGather, 3)]
    public void AllGatherPlacesRankRsInputAtItsOffset(AllGatherMethod method, int worldSize)
    {
        LoopbackRanks.RunAll(worldSize, group =>
        {
            using Tensor input = Torch.FromArray<float>(Pattern(group.Rank, N), [N]);
            using Tensor output = Torch.Full([worldSize * N], -1.0, DType.Float32);
            group.AllGather(input, output, method);
            float[] expected = Enumerable.Range(0, worldSize).SelectMany(r => Pattern(r, N)).ToArray();
            Assert.Equal(expected, output.ToArray<float>());
        });
    }

    [Theory]
    [InlineData(ReduceScatterFallback.AllReduceThenCopy, 2)]
    [InlineData(ReduceScatterFallback.ReducePerShard, 2)]
    [InlineData(ReduceScatterFallback.ReducePerShard, 3)]
    [InlineData(ReduceScatterFallback.AllToAllThenSum, 2)]
    [InlineData(ReduceScatterFallback.AllToAllThenSum, 3)]
    public void ReduceScatterGivesEachRankTheSumOfItsShard(ReduceScatterFallback fallback, int worldSize)
    {
        LoopbackRanks.RunAll(worldSize, group =>
        {
            Assert.False(group.SupportsNativeReduceScatter);
            // Rank r's input element j: r * 100000 + j, so shard s of the sum is sum_r(r * 100000) + s * N + i.
            float[] input = Enumerable.Range(0, worldSize * N).Select(j => (float)(group.Rank * 100_000 + j)).ToArray();
            using Tensor t = Torch.FromArray<float>(input, [worldSize * N]);
            using Tensor shard = Torch.Full([N], -1.0, DType.Float32);
            // With 2 ranks the all-to-all lands in a caller's buffer (as the pool lends it), with 3 in its own.
            using Tensor? scratch = worldSize == 2 ? Torch.Full([worldSize * N], -7.0, DType.Float32) : null;
            group.ReduceScatter(t, shard, ReduceOp.Sum, fallback, scratch);
            float rankSum = 100_000f * worldSize * (worldSize - 1) / 2;
            float[] expected = Enumerable.Range(0, N).Select(i => rankSum + worldSize * (float)(group.Rank * N + i)).ToArray();
            Assert.Equal(expected, shard.ToArray<float>());
        });
    }

    [Fact]
    public void AllToAllSendsShardSToRankS()
    {
        LoopbackRanks.RunAll(3, group =>
        {
            // Rank r's shard s holds 10 r + s everywhere: rank s must receive 10 r + s from each rank r, in rank order.
            float[] input = Enumerable.Range(0, 3 * N).Select(j => 10f * group.Rank + j / N).ToArray();
            using Tensor t = Torch.FromArray<float>(input, [3 * N]);
            using Tensor received = Torch.Full([3 * N], -1.0, DType.Float32);
            group.AllToAll(t, received);
            Assert.Equal(Enumerable.Range(0, 3 * N).Select(j => 10f * (j / N) + group.Rank).ToArray(), received.ToArray<float>());
        });
    }

    [Fact]
    public void CountersAreReducedAsFloat64AndBarrierReturnsOnEveryRank()
    {
        LoopbackRanks.RunAll(3, group =>
        {
            // Byte counters beyond 2^53 / 3 would lose bits in float32; float64 keeps these exact.
            Span<double> counters = [1e15 + group.Rank, group.Rank == 1 ? 7.5 : 0];
            group.AllReduce(counters);
            Assert.Equal(3e15 + 3, counters[0]);
            Assert.Equal(7.5, counters[1]);
            group.Barrier();
        });
    }

    [Fact]
    public void AWrongSizeIsTheCallersBugAndLeavesTheGroupUsable()
    {
        LoopbackRanks.RunAll(2, group =>
        {
            using Tensor input = Torch.Zeros([N], DType.Float32);
            using Tensor tooSmall = Torch.Zeros([N], DType.Float32);
            var e = Assert.Throws<TorchException>(() => group.AllGather(input, tooSmall, AllGatherMethod.GlooAllGather));
            Assert.Contains("all_gather needs an output of world size x input elements", e.Message);
            Assert.False(group.IsBroken);
            group.Barrier();
        });
    }

    [Fact]
    public void ADtypeGlooCannotReduceIsRefusedWithoutBreakingTheGroup()
    {
        LoopbackRanks.RunAll(2, group =>
        {
            // Gloo in libtorch 1.13 has no bfloat16 reduction; the error must not read as a peer's failure.
            using Tensor bf16 = Torch.Ones([8], DType.BFloat16);
            if (Torch.LibTorchVersion.StartsWith("1.", StringComparison.Ordinal))
            {
                var e = Assert.Throws<TorchException>(() => group.AllReduce(bf16));
                Assert.Equal($"rank {group.Rank} of 2 (gloo): all_reduce cannot carry BFloat16 tensors over Gloo in libtorch {Torch.LibTorchVersion}; use float32 (FineTune keeps gradients and master weights in float32)", e.Message);
            }
            Assert.False(group.IsBroken);
            using Tensor f32 = Torch.Ones([8], DType.Float32);
            group.AllReduce(f32);
            Assert.Equal(Enumerable.Repeat(2f, 8).ToArray(), f32.ToArray<float>());
        });
    }
}
