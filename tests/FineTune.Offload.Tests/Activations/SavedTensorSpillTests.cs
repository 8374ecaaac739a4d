using FineTune.IO;
using FineTune.Offload.Activations;
using FineTune.Offload.Storage;
using FineTune.Torch;
using Xunit;
using static FineTune.Torch.Torch;

namespace FineTune.Offload.Tests.Activations;

/// <summary>
/// Captured regions spilled layer by layer: once the drive has a region's bytes its pages are gone (the tensor reads
/// zeros), and a restore brings back every value, whichever engine moves them and whether the restore comes before
/// or after the write finished; what would overrun the file stays in memory, untouched; a pass that left a layer out
/// is refused; the file is deleted on Dispose.
/// </summary>
public sealed class SavedTensorSpillTests
{
    private static long Elements => AllocationCapture.MinimumByteCount / sizeof(float);

    [Theory]
    [InlineData(IoEngineKind.Auto)]
    [InlineData(IoEngineKind.Threads)]
    public void SpilledLayersReadZerosUntilRestoredThenEveryValue(IoEngineKind engine)
    {
        InScratch(directory =>
        {
            using var scope = TensorScope.Enter();
            var file = DeviceFile.Create(directory, "saved-tensors", 64L << 20, engine);
            string path = file.Path;
            using (var spill = new SavedTensorSpill(file, layerCount: 3, inFlightLimitByteCount: 1L << 30))
            {
                for (int pass = 0; pass < 2; pass++)
                {
                    spill.BeginPass();
                    var layers = new List<Tensor[]>();
                    for (int layer = 0; layer < 3; layer++)
                    {
                        int l = layer, p = pass;
                        var (tensors, regions) = AllocationCapture.Run(() => new[]
                        {
                            Arange(100.0 * l + p, 100.0 * l + p + Elements * (l + 1), 1, DType.Float32),
                            Full([Elements * 2 + 7], l - 0.5),
                        });
                        Assert.Equal(2, regions.Length);
                        spill.Spill(layer, regions);
                        layers.Add(tensors);
                    }
                    long total = layers.Sum(ts => ts.Sum(t => AlignedBuffer.RoundUpToSector(t.NumElements * 4)));
                    Assert.Equal(total, spill.SpilledByteCount);
                    WaitFor(() => spill.Counters.BytesWritten == total * (pass + 1));
                    WaitFor(() => layers.All(ts => ts.All(t => t.Abs().Sum().Item<double>() == 0))); // discarded once written
                    for (int layer = 2; layer >= 0; layer--)
                    {
                        spill.Prefetch(layer - 1);
                        spill.Restore(layer);
                        Assert.False(spill.Holds(layer));
                        Assert.Equal(Enumerable.Range(0, (int)Elements * (layer + 1)).Select(i => (float)(i + 100.0 * layer + pass)), layers[layer][0].ToArray<float>());
                        Assert.All(layers[layer][1].ToArray<float>(), v => Assert.Equal(layer - 0.5f, v));
                    }
                    Assert.Equal(total * (pass + 1), spill.Counters.BytesRead);
                    foreach (Tensor t in layers.SelectMany(ts => ts))
                        t.Dispose();
                }
            }
            Assert.False(File.Exists(path));
        });
    }

    [Fact]
    public void ARestoreRightAfterTheSpillKeepsOrReadsBackTheSameValues()
    {
        InScratch(directory =>
        {
            using var scope = TensorScope.Enter();
            using var spill = new SavedTensorSpill(DeviceFile.Create(directory, "saved-tensors", 16L << 20), 1, 1L << 30);
            for (int round = 0; round < 20; round++)
            {
                spill.BeginPass();
                int r = round;
                var (tensor, regions) = AllocationCapture.Run(() => Full([Elements * 3], r + 0.25));
                spill.Spill(0, regions);
                spill.Restore(0); // before, during or after the write: the values either never left or came back
                Assert.All(tensor.ToArray<float>(), v => Assert.Equal(round + 0.25f, v));
                tensor.Dispose();
            }
        });
    }

    [Fact]
    public void WhatWouldOverrunTheFileStaysInMemoryAndAPassMustRestoreEveryLayer()
    {
        InScratch(directory =>
        {
            using var scope = TensorScope.Enter();
            long regionBytes = AlignedBuffer.RoundUpToSector(Elements * 4 * 4);
            using var spill = new SavedTensorSpill(DeviceFile.Create(directory, "saved-tensors", regionBytes), 2, 1L << 30);
            spill.BeginPass();
            var (first, a) = AllocationCapture.Run(() => Full([Elements * 4], 1.0));
            var (second, b) = AllocationCapture.Run(() => Full([Elements * 4], 2.0));
            spill.Spill(0, a);
            spill.Spill(1, b); // the file is full: stays
            Assert.Equal(regionBytes, spill.UnspilledByteCount);
            WaitFor(() => spill.Counters.BytesWritten == regionBytes);
            Assert.All(second.ToArray<float>(), v => Assert.Equal(2f, v));
            Assert.Throws<InvalidOperationException>(() => spill.BeginPass()); // layer 0 still out
            spill.Restore(1);
            spill.Restore(0);
            Assert.All(first.ToArray<float>(), v => Assert.Equal(1f, v));
            spill.BeginPass();
        });
    }

    private static void InScratch(Action<string> body)
    {
        string directory = Directory.CreateTempSubdirectory("finetune-spill-").FullName;
        try
        {
            body(directory);
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    private static void WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting for the spill's writes");
            Thread.Sleep(5);
        }
    }
}
