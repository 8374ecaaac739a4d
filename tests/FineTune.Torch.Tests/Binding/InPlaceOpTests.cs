using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>In-place optimizer arithmetic, clamp, norm, stack and the finite check, against hand-computed values.</summary>
public sealed class InPlaceOpTests
{
    private static Tensor D(params double[] values) => Torch.FromArray(values);

    [Fact]
    public void InPlaceArithmeticUpdatesTheSameStorage()
    {
        using var scope = TensorScope.Enter();
        var t = D(1, 2, 3);
        var pointer = t.DataPointer;
        t.MulInPlace(D(2, 3, 4)).SubInPlace(D(1, 1, 1)).DivInPlace(D(1, 5, 11));
        // ([1, 2, 3] * [2, 3, 4] - 1) / [1, 5, 11] = [1, 1, 1]
        Assert.Equal(new double[] { 1, 1, 1 }, t.ToArray<double>());
        Assert.Equal(pointer, t.DataPointer);
        // 1 + 0.5 * [2, 4, 6] * [1, 1, 2] = [2, 3, 7]
        t.AddcmulInPlace(D(2, 4, 6), D(1, 1, 2), 0.5);
        Assert.Equal(new double[] { 2, 3, 7 }, t.ToArray<double>());
        // [2, 3, 7] - 1 * [2, 3, 7] / [2, 3, 7] = [1, 2, 6]
        t.AddcdivInPlace(D(2, 3, 7), D(2, 3, 7), -1);
        Assert.Equal(new double[] { 1, 2, 6 }, t.ToArray<double>());
        // [1, 2, 6] + 0.25 * ([5, 6, 10] - [1, 2, 6]) = [2, 3, 7]
        t.LerpInPlace(D(5, 6, 10), 0.25);
        Assert.Equal(new double[] { 2, 3, 7 }, t.ToArray<double>());
        Assert.Equal(new double[] { -2, -3 }, D(4, 9).SqrtInPlace().NegInPlace().ToArray<double>());
    }

    [Fact]
    public void ClampNormStackAndFiniteCheck()
    {
        using var scope = TensorScope.Enter();
        Assert.Equal(new double[] { -1, 0.5, 1 }, D(-3, 0.5, 4).Clamp(-1, 1).ToArray<double>());
        Assert.Equal(new double[] { 0, 0.5, 4 }, D(-3, 0.5, 4).Clamp(0, null).ToArray<double>());
        Assert.Equal(new double[] { -3, 0.5, 1 }, D(-3, 0.5, 4).ClampInPlace(null, 1).ToArray<double>());
        Assert.Contains("needs a minimum, a maximum or both", Assert.Throws<TorchException>(() => D(1).Clamp(null, null)).Message);
        // sqrt(3^2 + 4^2) = 5; (1 + 8)^(1/3) = 9^(1/3)
        Assert.Equal(5.0, D(3, -4).Norm().Item<double>(), 12);
        Assert.Equal(Math.Cbrt(9), D(1, 2).Norm(3).Item<double>(), 12);
        var stacked = Torch.Stack([D(1, 2), D(3, 4)], 1);
        Assert.Equal(new long[] { 2, 2 }, stacked.Shape);
        Assert.Equal(new double[] { 1, 3, 2, 4 }, stacked.ToArray<double>());
        Assert.True(D(1, -2, 1e300).AllFinite());
        Assert.False(D(1, double.NaN).AllFinite());
        Assert.False(D(double.NegativeInfinity, 0).AllFinite());
        Assert.False(Torch.FromArray(new float[] { 1e38f }).Mul(10.0).AllFinite());
    }
}
