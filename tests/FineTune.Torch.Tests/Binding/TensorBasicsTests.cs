using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>Metadata, creation, dtypes, host copies and zero-copy views, checked against hand-computed values.</summary>
public sealed class TensorBasicsTests
{
    [Fact]
    public void ShapeStridesAndMetadataMatchLibtorch()
    {
        using var scope = TensorScope.Enter();
        var t = Torch.Zeros([2, 3, 4], DType.Float32);
        Assert.Equal(new long[] { 2, 3, 4 }, t.Shape);
        Assert.Equal(new long[] { 12, 4, 1 }, t.Strides);
        Assert.Equal(3, t.Rank);
        Assert.Equal(24, t.NumElements);
        Assert.Equal(4, t.ElementByteCount);
        Assert.Equal(DType.Float32, t.DType);
        Assert.Equal(Device.Cpu, t.Device);
        Assert.True(t.IsContiguous);
        Assert.NotEqual(IntPtr.Zero, t.DataPointer);
        var tt = t.Transpose(0, 2);
        Assert.Equal(new long[] { 4, 3, 2 }, tt.Shape);
        Assert.Equal(new long[] { 1, 4, 12 }, tt.Strides);
        Assert.False(tt.IsContiguous);
        Assert.Equal(t.DataPointer, tt.DataPointer);
    }

    [Theory]
    [InlineData(DType.Float32, 4)]
    [InlineData(DType.Float64, 8)]
    [InlineData(DType.BFloat16, 2)]
    [InlineData(DType.Float16, 2)]
    [InlineData(DType.Int64, 8)]
    [InlineData(DType.Int32, 4)]
    [InlineData(DType.UInt8, 1)]
    [InlineData(DType.Bool, 1)]
    public void EveryDTypeRoundTrips(DType dtype, int elementByteCount)
    {
        using var scope = TensorScope.Enter();
        var t = Torch.Ones([3], dtype);
        Assert.Equal(dtype, t.DType);
        Assert.Equal(elementByteCount, t.ElementByteCount);
        Assert.Equal(elementByteCount, dtype.ElementByteCount());
        Assert.Equal(3.0, t.Sum().Item<double>());
    }

    [Fact]
    public void SpanCopiesRoundTripForEachElementType()
    {
        using var scope = TensorScope.Enter();
        Assert.Equal(new[] { 1.5f, -2f, 3.25f }, Torch.FromArray(new[] { 1.5f, -2f, 3.25f }).ToArray<float>());
        Assert.Equal(new[] { 1.5, -2.0 }, Torch.FromArray(new[] { 1.5, -2.0 }).ToArray<double>());
        Assert.Equal(new[] { 7L, -9L }, Torch.FromArray(new[] { 7L, -9L }).ToArray<long>());
        Assert.Equal(new[] { 7, -9 }, Torch.FromArray(new[] { 7, -9 }).ToArray<int>());
        Assert.Equal(new byte[] { 0, 255 }, Torch.FromArray(new byte[] { 0, 255 }).ToArray<byte>());
        Assert.Equal(new[] { true, false }, Torch.FromArray(new[] { true, false }).ToArray<bool>());
        Assert.Equal(new[] { (Half)0.5f, (Half)(-3f) }, Torch.FromArray(new[] { (Half)0.5f, (Half)(-3f) }).ToArray<Half>());
        // bf16 travels as raw bits: 1.0 is 0x3F80, -2.0 is 0xC000 (the top 16 bits of the float32 encoding).
        var bf16 = Torch.FromArray(new[] { 1.0f, -2.0f }).To(DType.BFloat16);
        Assert.Equal(new ushort[] { 0x3F80, 0xC000 }, bf16.ToArray<ushort>());
    }

    [Fact]
    public void CopyToReadsNonContiguousTensorsInLogicalOrder()
    {
        using var scope = TensorScope.Enter();
        var t = Torch.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]).Transpose(0, 1);
        Assert.Equal(new float[] { 1, 4, 2, 5, 3, 6 }, t.ToArray<float>());
        var target = Torch.Zeros([2, 2]);
        target.CopyFrom<float>(new float[] { 9, 8, 7, 6 });
        Assert.Equal(new float[] { 9, 8, 7, 6 }, target.ToArray<float>());
    }

    [Fact]
    public void FromPointerSharesCallerMemory()
    {
        using var scope = TensorScope.Enter();
        var buffer = GC.AllocateArray<float>(6, pinned: true);
        unsafe
        {
            fixed (float* p = buffer)
            {
                var view = Torch.FromPointer((IntPtr)p, [2, 3], DType.Float32);
                Assert.Equal((IntPtr)p, view.DataPointer);
                view.FillInPlace(2.5);
                Assert.All(buffer, v => Assert.Equal(2.5f, v));
                buffer[4] = -1f;
                Assert.Equal(-1f, view.Narrow(0, 1, 1).Narrow(1, 1, 1).Item<float>());
            }
        }
    }

    [Fact]
    public void FullArangeAndSeededRandomAreDeterministic()
    {
        using var scope = TensorScope.Enter();
        Assert.Equal(new float[] { 3, 3 }, Torch.Full([2], 3.0).ToArray<float>());
        Assert.Equal(new long[] { 0, 1, 2, 3 }, Torch.Arange(4).ToArray<long>());
        Assert.Equal(new double[] { 1, 1.5, 2 }, Torch.Arange(1, 2.25, 0.5, DType.Float64).ToArray<double>());
        Assert.Equal(new float[] { 0f, 0.25f, 0.5f, 0.75f }, Torch.Arange(0, 1, 0.25).ToArray<float>());
        Assert.Equal(new long[] { 2, 4 }, Torch.Arange(2, 6, 2).ToArray<long>());
        using var g1 = new Generator(1234);
        using var g2 = new Generator(1234);
        var a = Torch.Randn([1000], g1).ToArray<float>();
        var b = Torch.Randn([1000], g2).ToArray<float>();
        Assert.Equal(a, b);
        var mean = a.Average();
        var variance = a.Select(x => (x - mean) * (x - mean)).Average();
        Assert.InRange(mean, -0.15, 0.15);
        Assert.InRange(variance, 0.85, 1.15);
        var u = Torch.Rand([1000], g1).ToArray<float>();
        Assert.All(u, x => Assert.InRange(x, 0f, 1f));
        Assert.InRange(u.Average(), 0.45, 0.55);
    }

    [Fact]
    public void DeviceParsesAndPrints()
    {
        Assert.Equal(Device.Cpu, Device.Parse("cpu"));
        Assert.Equal(Device.Cuda(0), Device.Parse("cuda"));
        Assert.Equal(Device.Cuda(3), Device.Parse("cuda:3"));
        Assert.Equal("cuda:3", Device.Cuda(3).ToString());
        Assert.Throws<ArgumentException>(() => Device.Parse("tpu:0"));
    }
}
