using System.Runtime.InteropServices;
using FineTune.Torch;
using Xunit;
using static FineTune.Torch.Torch;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Allocation capture: the capturing thread's large CPU allocations come back as page-aligned regions holding the
/// tensors that outlived the capture (the ones it freed, the small ones and the suspended ones are not listed); a
/// discarded region reads as zeros and writing its bytes back restores the tensor; an autograd graph recorded under
/// capture, discarded and restored, back-propagates the same gradient bits as one never touched.
/// </summary>
public sealed class AllocationCaptureTests
{
    private static long Elements => AllocationCapture.MinimumByteCount / sizeof(float); // one region's worth of fp32

    [Fact]
    public void ListsTheLargeAllocationsThatOutliveTheCapture()
    {
        using var scope = TensorScope.Enter();
        Tensor big = null!, small = null!, suspended = null!;
        var (_, regions) = AllocationCapture.Run(() =>
        {
            big = Full([Elements * 3 + 5], 1.5);
            small = Full([16], 2.0);
            using (Tensor freed = Full([Elements * 2], 3.0)) { }
            using (AllocationCapture.Suspend())
                suspended = Full([Elements * 2], 4.0);
            return 0;
        });
        CapturedRegion region = Assert.Single(regions);
        Assert.True(region.Holds(big.DataPointer));
        Assert.Equal(0, region.Pointer % 4096);
        Assert.Equal(AlignedByteCount((Elements * 3 + 5) * sizeof(float)), region.ByteCount);
        Assert.False(region.Holds(small.DataPointer) || region.Holds(suspended.DataPointer));
        Assert.Empty(AllocationCapture.Run(() => 0).Regions); // nothing allocated: nothing listed
    }

    [Fact]
    public unsafe void ADiscardedRegionIsRestoredByWritingItsBytesBack()
    {
        using var scope = TensorScope.Enter();
        var (tensor, regions) = AllocationCapture.Run(() => Arange(0, Elements * 4, 1, DType.Float32));
        CapturedRegion region = Assert.Single(regions);
        byte[] saved = new byte[region.ByteCount];
        Marshal.Copy(region.Pointer, saved, 0, saved.Length);
        AllocationCapture.Discard(region);
        Assert.Equal(0.0, tensor.Abs().Sum().Item<double>()); // the pages went back: zeros
        Marshal.Copy(saved, 0, region.Pointer, saved.Length);
        Assert.Equal(Enumerable.Range(0, (int)(Elements * 4)).Select(i => (float)i), tensor.ToArray<float>());
    }

    [Fact]
    public unsafe void AGraphRestoredAfterADiscardBackPropagatesTheSameBits()
    {
        using var scope = TensorScope.Enter();
        using var generator = new Generator(5);
        Tensor weight = Randn([256, 512], generator);           // the products are (256, 256): 256 KiB each, captured
        Tensor input = Randn([256, 512], generator);
        float[] Gradient(bool discard)
        {
            using var inner = TensorScope.Enter();
            Tensor leaf = weight.Detach();
            leaf.RequiresGrad = true;
            Tensor loss;
            CapturedRegion[] regions;
            Tensor Forward()
            {
                Tensor z = Linear(input, leaf).Silu();
                return (z * z.Softmax(-1)).Sum();
            }
            using (EnableGrad())
                (loss, regions) = AllocationCapture.Run(Forward);
            Assert.True(regions.Length >= 3); // the graph's saved tensors: the product, the activation, the softmax
            var copies = regions.Select(r => { var b = new byte[r.ByteCount]; Marshal.Copy(r.Pointer, b, 0, b.Length); return b; }).ToList();
            if (discard)
            {
                foreach (CapturedRegion r in regions)
                    AllocationCapture.Discard(r);
                for (int i = 0; i < regions.Length; i++)
                    Marshal.Copy(copies[i], 0, regions[i].Pointer, copies[i].Length);
            }
            Backward([loss]);
            return leaf.Grad!.ToArray<float>();
        }
        Gradient(discard: false); // the first product after start-up may take another kernel path: warm it up
        float[] untouched = Gradient(discard: false);
        Assert.Equal(untouched, Gradient(discard: true));
        Assert.Equal(untouched, Gradient(discard: false));
    }

    private static long AlignedByteCount(long bytes) => (bytes + 4095) / 4096 * 4096;
}
