using FineTune.Offload.Activations;
using FineTune.Offload.Memory;
using FineTune.Torch;
using Xunit;

namespace FineTune.Offload.Tests.Activations;

/// <summary>
/// Checkpoints saved in forward order and loaded in backward order come back bit-identical from host buffers and
/// from the NVMe file; writes and prefetches move the bytes the counters say; the pool is planned exactly and every
/// staging buffer is back after a pass; the swap file is deleted on Dispose.
/// </summary>
public sealed class ActivationStoreTests
{
    private const int Layers = 6;
    private static readonly long[] s_shape = [2, 5, 48]; // (B, T, C) fp32: 1,920 bytes, not a sector multiple

    private static ActivationStoreOptions Options(int nvmeCount, string? directory, int staging = 3) => new()
    {
        CheckpointCount = Layers,
        CheckpointByteCount = 2 * 5 * 48 * 4,
        NvmeCheckpointCount = nvmeCount,
        NvmeDirectory = directory,
        StagingBufferCount = staging,
    };

    [Theory]
    [InlineData(0, 3)]
    [InlineData(4, 2)]
    [InlineData(6, 3)]
    [InlineData(6, 2)]
    public void ForwardThenBackwardRoundTripsEveryCheckpoint(int nvmeCount, int staging)
    {
        string directory = Directory.CreateTempSubdirectory("finetune-activations-").FullName;
        try
        {
            ActivationStoreOptions options = Options(nvmeCount, directory, staging);
            var plan = new PoolPlan();
            ActivationStore.AddToPlan(plan, options);
            using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
            long expectedReserved = (Layers - nvmeCount) * 4096L + (nvmeCount > 0 ? staging * 4096L : 0);
            Assert.Equal(expectedReserved, pool.ReservedByteCount);
            string? file;
            using (var store = new ActivationStore(pool, options))
            {
                file = store.FilePath;
                Assert.Equal(nvmeCount > 0, file is not null && File.Exists(file));
                for (int pass = 0; pass < 3; pass++)
                {
                    using var scope = TensorScope.Enter();
                    var saved = new float[Layers][];
                    using (var generator = new Generator(pass))
                    {
                        for (int i = 0; i < Layers; i++)
                        {
                            Tensor x = FineTune.Torch.Torch.Randn(s_shape, generator);
                            saved[i] = x.ToArray<float>();
                            store.Save(i, x);
                        }
                    }
                    for (int i = Layers - 1; i >= 0; i--)
                    {
                        for (int ahead = 1; ahead < staging; ahead++)
                            store.Prefetch(i - ahead);
                        Tensor loaded = store.Load(i);
                        Assert.Equal(s_shape, loaded.Shape);
                        Assert.Equal(saved[i], loaded.ToArray<float>());
                    }
                    store.Drain();
                    Assert.Equal(Layers - nvmeCount, pool.OutstandingLeaseCount - (nvmeCount > 0 ? staging : 0));
                }
                // Every NVMe checkpoint is written once per pass (a 4 KiB extent); reads are those not served from staging.
                Assert.Equal(3L * nvmeCount * 4096, store.Counters.BytesWritten);
                Assert.Equal(3L * nvmeCount * 4096 - store.Counters.Hits * 4096, store.Counters.BytesRead);
                if (nvmeCount > 0)
                    Assert.True(store.Counters.Hits >= 3, "the top NVMe checkpoint of each pass is still in its staging buffer");
            }
            Assert.Equal(0, pool.OutstandingLeaseCount);
            if (file is not null)
                Assert.False(File.Exists(file));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public void BadPlansAreRefused()
    {
        Assert.Throws<UserErrorException>(() => ActivationStore.AddToPlan(new PoolPlan(), Options(2, null)));
        Assert.Throws<ArgumentOutOfRangeException>(() => ActivationStore.AddToPlan(new PoolPlan(), Options(7, "/tmp")));
        Assert.Throws<ArgumentOutOfRangeException>(() => ActivationStore.AddToPlan(new PoolPlan(), Options(2, "/tmp", staging: 1)));
        using var scope = TensorScope.Enter();
        var plan = new PoolPlan();
        ActivationStore.AddToPlan(plan, Options(0, null));
        using HostMemoryPool pool = HostMemoryPool.Create(plan, long.MaxValue);
        using var store = new ActivationStore(pool, Options(0, null));
        Assert.Throws<ArgumentException>(() => store.Save(0, FineTune.Torch.Torch.Zeros([2, 5, 49])));
        Assert.Throws<InvalidOperationException>(() => store.Load(1));
        store.Save(1, FineTune.Torch.Torch.Zeros([2, 5, 48]));
        store.Load(1);
        Assert.Throws<InvalidOperationException>(() => store.Load(1)); // each save is loaded once
    }
}
