using FineTune.Offload.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

public sealed unsafe class GradientNormTests
{
    [Fact]
    public void SumOfSquaresMatchesNaiveDoubleSumOverMixedBuffers()
    {
        float[] a = SeededGradients.Uniform(21, 200_003).Select(x => x * 1e3f).ToArray();
        ushort[] b = SeededGradients.Uniform(22, 70_001).Select(LowPrecision.ToBFloat16).ToArray();
        double expected = a.Sum(x => (double)x * x) + b.Sum(x => (double)LowPrecision.FromBFloat16(x) * LowPrecision.FromBFloat16(x));
        fixed (float* pa = a)
        fixed (ushort* pb = b)
        {
            double actual = GradientNorm.SumOfSquares(new[] { ((nint)pa, ElementType.Float32, (long)a.Length), ((nint)pb, ElementType.BFloat16, (long)b.Length) });
            Assert.Equal(expected, actual, expected * 1e-12);
            // Thread count does not change the bits.
            Assert.Equal(actual, GradientNorm.SumOfSquares(new[] { ((nint)pa, ElementType.Float32, (long)a.Length), ((nint)pb, ElementType.BFloat16, (long)b.Length) }, 1));
        }
    }

    [Fact]
    public void LargeFiniteGradientsDoNotOverflowButNaNAndInfinityShow()
    {
        float[] a = Enumerable.Repeat(float.MaxValue, 1000).ToArray();
        fixed (float* pa = a)
        {
            var buffers = new[] { ((nint)pa, ElementType.Float32, (long)a.Length) };
            Assert.True(double.IsFinite(GradientNorm.SumOfSquares(buffers)));
            a[777] = float.NaN;
            Assert.False(double.IsFinite(GradientNorm.SumOfSquares(buffers)));
            a[777] = float.NegativeInfinity;
            Assert.False(double.IsFinite(GradientNorm.SumOfSquares(buffers)));
        }
        ushort[] b = new ushort[100];
        b[99] = 0x7F80; // bf16 +inf, in the scalar tail
        fixed (ushort* pb = b)
            Assert.False(double.IsFinite(GradientNorm.SumOfSquares(new[] { ((nint)pb, ElementType.BFloat16, 100L) })));
    }
}
