using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Forward values of the ops against results computed by hand (the comment above each assertion shows the
/// arithmetic; the transcendental ones were also confirmed with PyTorch 1.13: torch.softmax, F.cross_entropy, F.silu).
/// </summary>
public sealed class OpValueTests
{
    private static void Near(double[] expected, double[] actual, double tolerance = 1e-9)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tolerance, $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }

    private static Tensor D(double[] values, params long[] shape) => Torch.FromArray(values, shape.Length == 0 ? [values.Length] : shape);

    [Fact]
    public void ElementwiseArithmetic()
    {
        using var scope = TensorScope.Enter();
        var a = D([1, 2, 3]);
        var b = D([4, 5, 6]);
        Assert.Equal(new double[] { 5, 7, 9 }, (a + b).ToArray<double>());
        Assert.Equal(new double[] { -3, -3, -3 }, (a - b).ToArray<double>());
        Assert.Equal(new double[] { 4, 10, 18 }, (a * b).ToArray<double>());
        Assert.Equal(new double[] { 0.25, 0.4, 0.5 }, (a / b).ToArray<double>());
        Assert.Equal(new double[] { 3, 4, 5 }, (a + 2).ToArray<double>());
        Assert.Equal(new double[] { 9, 8, 7 }, (10 - a).ToArray<double>());
        Assert.Equal(new double[] { 6, 3, 2 }, (6 / a).ToArray<double>());
        Assert.Equal(new double[] { -1, -2, -3 }, (-a).ToArray<double>());
        Assert.Equal(new double[] { 1, 8, 27 }, a.Pow(3).ToArray<double>());
        Assert.Equal(new double[] { 0.5, 1.0 / 3 }, D([4, 9]).Rsqrt().ToArray<double>());
        Assert.Equal(new double[] { 2, 3 }, D([4, 9]).Sqrt().ToArray<double>());
        Near([1, Math.E], D([0, 1]).Exp().ToArray<double>());
        Near([0, 1], D([1, Math.E]).Log().ToArray<double>());
        // broadcasting (2, 3) + (3)
        Assert.Equal(new double[] { 5, 7, 9, 8, 10, 12 }, (D([1, 2, 3, 4, 5, 6], 2, 3) + b).ToArray<double>());
    }

    [Fact]
    public void Reductions()
    {
        using var scope = TensorScope.Enter();
        var x = D([1, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal(new double[] { 2, 5 }, x.Mean([1]).ToArray<double>());
        Assert.Equal(new long[] { 2, 1 }, x.Mean([1], keepDim: true).Shape);
        Assert.Equal(new double[] { 5, 7, 9 }, x.Sum([0]).ToArray<double>());
        Assert.Equal(3.5, x.Mean().Item<double>());
        Assert.Equal(21, x.Sum().Item<double>());
        Assert.Equal(6, x.Max().Item<double>());
        Assert.Equal(new long[] { 2, 2 }, x.ArgMax(1).ToArray<long>());
    }

    [Fact]
    public void SoftmaxLogSoftmaxSiluMatchHandComputation()
    {
        using var scope = TensorScope.Enter();
        // softmax([1, 2, 3]) = e^i / (e + e^2 + e^3) with e + e^2 + e^3 = 30.19287485
        var softmax = D([1, 2, 3]).Softmax(0).ToArray<double>();
        Near([0.0900305732, 0.2447284711, 0.6652409558], softmax, 1e-10);
        Near(softmax.Select(p => Math.Log(p)).ToArray(), Torch.LogSoftmax(D([1, 2, 3]), 0).ToArray<double>(), 1e-12);
        // silu(x) = x / (1 + e^-x): silu(1) = 0.7310585786, silu(-1) = -0.2689414214
        Near([0.7310585786, -0.2689414214, 0], D([1, -1, 0]).Silu().ToArray<double>(), 1e-10);
    }

    [Fact]
    public void CrossEntropyMatchesHandComputation()
    {
        using var scope = TensorScope.Enter();
        var logits = D([1, 2, 3, 1, 1, 1], 2, 3);
        // row 0: -log softmax([1,2,3])[2] = 0.4076059644; row 1: uniform over 3 classes = log 3 = 1.0986122887
        var targets = Torch.FromArray(new long[] { 2, 0 });
        Assert.Equal(0.7531091266, Torch.CrossEntropy(logits, targets).Item<double>(), 9);
        Assert.Equal(1.5062182531, Torch.CrossEntropy(logits, targets, reduction: Reduction.Sum).Item<double>(), 9);
        // an ignored target neither adds to the sum nor to the divisor of the mean
        var ignored = Torch.FromArray(new long[] { 2, -100 });
        Assert.Equal(0.4076059644, Torch.CrossEntropy(logits, ignored).Item<double>(), 9);
        Near([0.4076059644, 0], Torch.CrossEntropy(logits, ignored, reduction: Reduction.None).ToArray<double>(), 1e-9);
        Assert.Equal(0.4076059644, Torch.CrossEntropy(logits, Torch.FromArray(new long[] { 2, 1 }), ignoreIndex: 1).Item<double>(), 9);
    }

    [Fact]
    public void LinearMatMulBmmEmbedding()
    {
        using var scope = TensorScope.Enter();
        // [1, 2] W^T + b with W = [[1,0],[0,1],[1,1]], b = [0.5, -0.5, 1]: [1 + 0.5, 2 - 0.5, 3 + 1]
        var y = Torch.Linear(D([1, 2], 1, 2), D([1, 0, 0, 1, 1, 1], 3, 2), D([0.5, -0.5, 1]));
        Assert.Equal(new double[] { 1.5, 1.5, 4 }, y.ToArray<double>());
        Assert.Equal(new double[] { 1, 2, 3 }, Torch.Linear(D([1, 2], 1, 2), D([1, 0, 0, 1, 1, 1], 3, 2)).ToArray<double>());
        // [[1,2],[3,4]] @ [[0,1],[1,0]] swaps columns
        Assert.Equal(new double[] { 2, 1, 4, 3 }, Torch.MatMul(D([1, 2, 3, 4], 2, 2), D([0, 1, 1, 0], 2, 2)).ToArray<double>());
        var bmm = Torch.Bmm(D([1, 2, 3, 4], 2, 1, 2), D([1, 1, 2, 2], 2, 2, 1));
        Assert.Equal(new long[] { 2, 1, 1 }, bmm.Shape);
        // batch 0: 1*1 + 2*1 = 3; batch 1: 3*2 + 4*2 = 14
        Assert.Equal(new double[] { 3, 14 }, bmm.ToArray<double>());
        var embedding = Torch.Embedding(D([0, 1, 2, 3, 4, 5], 3, 2), Torch.FromArray(new long[] { 2, 0 }));
        Assert.Equal(new double[] { 4, 5, 0, 1 }, embedding.ToArray<double>());
    }

    [Fact]
    public void AttentionMatchesHandComputation()
    {
        using var scope = TensorScope.Enter();
        var k = D([1, 0, 0, 1], 1, 2, 2);
        var v = D([1, 2, 3, 4], 1, 2, 2);
        // scores = [1/sqrt 2, 0]; weights = softmax = [0.6697615, 0.3302385]; out = w0 v0 + w1 v1
        var single = Torch.ScaledDotProductAttention(D([1, 0], 1, 1, 2), k, v, isCausal: false);
        Near([1.6604769013, 2.6604769013], single.ToArray<double>(), 1e-9);
        // causal: query 0 sees only key 0 (output v0); query 1 has scores [0, 1/sqrt 2]
        var causal = Torch.ScaledDotProductAttention(D([1, 0, 0, 1], 1, 2, 2), k, v, isCausal: true);
        Near([1, 2, 2.3395230987, 3.3395230987], causal.ToArray<double>(), 1e-9);
    }

    [Fact]
    public void ShapeOps()
    {
        using var scope = TensorScope.Enter();
        var x = D([1, 2, 3, 4, 5, 6], 2, 3);
        Assert.Equal(new double[] { 1, 4, 2, 5, 3, 6 }, x.Transpose(0, 1).Contiguous().ToArray<double>());
        Assert.Equal(new long[] { 3, 2 }, x.View(3, -1).Shape);
        Assert.Equal(new long[] { 3, 1, 2 }, D(new double[6], 1, 2, 3).Permute(2, 0, 1).Shape);
        Assert.Equal(new double[] { 2, 3, 5, 6 }, x.Narrow(1, 1, 2).ToArray<double>());
        var expanded = D([1, 2], 2, 1).Expand(2, 3);
        Assert.Equal(new long[] { 1, 0 }, expanded.Strides);
        Assert.Equal(new double[] { 1, 1, 1, 2, 2, 2 }, expanded.ToArray<double>());
        Assert.Equal(new double[] { 1, 2, 1, 2, 3, 4, 3, 4 }, D([1, 2, 3, 4], 2, 2).RepeatInterleave(2, 0).ToArray<double>());
        Assert.Equal(new double[] { 1, 2, 3, 7, 4, 5, 6, 8 }, Torch.Cat([x, D([7, 8], 2, 1)], 1).ToArray<double>());
        Assert.Equal(new long[] { 2, 1, 3 }, x.Unsqueeze(1).Shape);
        Assert.Equal(new long[] { 2, 3 }, x.Unsqueeze(1).Squeeze(1).Shape);
        Assert.Equal(new double[] { 1, 4, 2, 5, 3, 6 }, x.Transpose(0, 1).Reshape(6).ToArray<double>());
    }

    [Fact]
    public void MaskingOps()
    {
        using var scope = TensorScope.Enter();
        var square = Torch.Arange(1, 10, 1, DType.Float64).View(3, 3);
        Assert.Equal(new double[] { 1, 2, 3, 0, 5, 6, 0, 0, 9 }, square.Triu().ToArray<double>());
        Assert.Equal(new double[] { 0, 0, 0, 4, 0, 0, 7, 8, 0 }, square.Tril(-1).ToArray<double>());
        var mask = Torch.FromArray(new[] { true, false, true });
        Assert.Equal(new double[] { -1, 2, -1 }, D([1, 2, 3]).MaskedFill(mask, -1).ToArray<double>());
        Assert.Equal(new double[] { 1, 20, 3 }, Torch.Where(mask, D([1, 2, 3]), D([10, 20, 30])).ToArray<double>());
        Assert.Equal(double.NegativeInfinity, D([1, 2, 3]).MaskedFill(mask, double.NegativeInfinity).ToArray<double>()[0]);
    }

    [Fact]
    public void ConversionsAndInPlaceOps()
    {
        using var scope = TensorScope.Enter();
        Assert.Equal(new long[] { 1, -1 }, D([1.7, -1.7]).To(DType.Int64).ToArray<long>());
        var half = D([0.5, 1.5]).To(Device.Cpu, DType.Float16);
        Assert.Equal(DType.Float16, half.DType);
        Assert.Equal(1.5f, half.Narrow(0, 1, 1).Item<float>());
        var t = Torch.Zeros([3], DType.Float64);
        t.FillInPlace(2).MulInPlace(3).AddInPlace(D([1, 2, 3]), alpha: 0.5);
        // 2 * 3 + 0.5 * [1, 2, 3]
        Assert.Equal(new double[] { 6.5, 7, 7.5 }, t.ToArray<double>());
        t.CopyFrom(D([9]));
        Assert.Equal(new double[] { 9, 9, 9 }, t.ToArray<double>());
        Assert.Equal(9, t.Narrow(0, 0, 1).Item<long>());
        Assert.True(D([1, 2]).ValueEquals(D([1, 2])));
        Assert.False(D([1, 2]).ValueEquals(D([1, 3])));
    }
}
