using FineTune.Torch;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Every differentiable op of the binding, in float64: libtorch's analytic gradient against central finite
/// differences. The maximum relative error of each op is printed and must stay below 1e-5.
/// </summary>
public sealed class GradientCheckTests(ITestOutputHelper output)
{
    private const double Tolerance = 1e-5;

    private sealed record Case(Func<Tensor[], Tensor> Function, long[][] Shapes, double[][] Values);

    private static double[] V(int count, int seed, double low = -1.5, double high = 1.5) => GradientChecker.Values(count, low, high, seed);

    private static double[] Positive(int count, int seed) => V(count, seed, 0.5, 1.5);

    private static Case Unary(Func<Tensor, Tensor> f, double[]? values = null) =>
        new(x => f(x[0]), [[2, 3]], [values ?? V(6, 1)]);

    private static Tensor Mask() => Torch.FromArray(new[] { true, false, false, true, false, true }, [2, 3]);

    private static readonly Dictionary<string, Case> s_cases = new()
    {
        ["Add"] = new(x => x[0] + x[1], [[2, 3], [3]], [V(6, 1), V(3, 2)]),
        ["Sub"] = new(x => x[0] - x[1], [[2, 3], [3]], [V(6, 1), V(3, 2)]),
        ["Mul"] = new(x => x[0] * x[1], [[2, 3], [2, 3]], [V(6, 1), V(6, 2)]),
        ["Div"] = new(x => x[0] / x[1], [[2, 3], [2, 3]], [V(6, 1), Positive(6, 2)]),
        ["AddScalar"] = Unary(x => x + 2.5),
        ["SubScalar"] = Unary(x => x - 1.5),
        ["MulScalar"] = Unary(x => x * 3.0),
        ["DivScalar"] = Unary(x => x / 4.0),
        ["ScalarMinusTensor"] = Unary(x => 2.0 - x),
        ["ScalarOverTensor"] = Unary(x => 3.0 / x, Positive(6, 3)),
        ["Neg"] = Unary(x => -x),
        ["PowFractional"] = Unary(x => x.Pow(2.5), Positive(6, 4)),
        ["PowSquare"] = Unary(x => x.Pow(2)),
        ["Rsqrt"] = Unary(x => x.Rsqrt(), Positive(6, 5)),
        ["Sqrt"] = Unary(x => x.Sqrt(), Positive(6, 6)),
        ["Exp"] = Unary(x => x.Exp()),
        ["Log"] = Unary(x => x.Log(), Positive(6, 7)),
        ["Abs"] = Unary(x => x.Abs(), Positive(6, 8)),
        ["Sigmoid"] = Unary(x => x.Sigmoid()),
        ["Tanh"] = Unary(x => x.Tanh()),
        ["Cos"] = Unary(x => x.Cos()),
        ["Sin"] = Unary(x => x.Sin()),
        ["Silu"] = Unary(x => x.Silu()),
        ["SiluFunctional"] = Unary(x => Torch.Silu(x)),
        ["MeanDims"] = Unary(x => x.Mean([1], keepDim: true)),
        ["MeanAll"] = Unary(x => x.Mean()),
        ["SumDims"] = Unary(x => x.Sum([0])),
        ["SumAll"] = Unary(x => x.Sum()),
        ["Max"] = Unary(x => x.Max()),
        ["Softmax"] = Unary(x => x.Softmax(-1)),
        ["SoftmaxFunctional"] = Unary(x => Torch.Softmax(x, 0)),
        ["LogSoftmax"] = Unary(x => Torch.LogSoftmax(x, 1)),
        ["View"] = Unary(x => x.View(3, 2) * Torch.Arange(1, 3, 1, DType.Float64)),
        ["Reshape"] = Unary(x => x.Transpose(0, 1).Reshape(6)),
        ["Transpose"] = Unary(x => x.Transpose(0, 1)),
        ["Permute"] = new(x => x[0].Permute(2, 0, 1), [[2, 3, 2]], [V(12, 9)]),
        ["Contiguous"] = Unary(x => x.Transpose(0, 1).Contiguous()),
        ["Expand"] = new(x => x[0].Expand(2, 3) * Torch.Arange(1, 4, 1, DType.Float64), [[2, 1]], [V(2, 10)]),
        ["RepeatInterleave"] = Unary(x => x.RepeatInterleave(2, 0)),
        ["Narrow"] = Unary(x => x.Narrow(1, 1, 2)),
        ["Unsqueeze"] = Unary(x => x.Unsqueeze(1)),
        ["Squeeze"] = new(x => x[0].Squeeze(1), [[3, 1]], [V(3, 11)]),
        ["Clone"] = Unary(x => x.Clone()),
        ["MaskedFill"] = Unary(x => x.MaskedFill(Mask(), -7.0)),
        ["Triu"] = new(x => x[0].Triu(0), [[3, 3]], [V(9, 12)]),
        ["Tril"] = new(x => x[0].Tril(-1), [[3, 3]], [V(9, 13)]),
        ["Where"] = new(x => Torch.Where(Mask(), x[0], x[1]), [[2, 3], [2, 3]], [V(6, 14), V(6, 15)]),
        ["Cat"] = new(x => Torch.Cat([x[0], x[1]], 1), [[2, 3], [2, 2]], [V(6, 16), V(4, 17)]),
        ["Linear"] = new(x => Torch.Linear(x[0], x[1], x[2]), [[2, 3], [4, 3], [4]], [V(6, 18), V(12, 19), V(4, 20)]),
        ["LinearNoBias"] = new(x => Torch.Linear(x[0], x[1]), [[2, 2, 3], [4, 3]], [V(12, 21), V(12, 22)]),
        ["MatMulBroadcast"] = new(x => Torch.MatMul(x[0], x[1]), [[2, 2, 3], [3, 2]], [V(12, 23), V(6, 24)]),
        ["Bmm"] = new(x => Torch.Bmm(x[0], x[1]), [[2, 2, 3], [2, 3, 2]], [V(12, 25), V(12, 26)]),
        ["Embedding"] = new(x => Torch.Embedding(x[0], Torch.FromArray(new long[] { 2, 0, 2, 3 }, [2, 2])), [[4, 3]], [V(12, 27)]),
        ["CrossEntropyMeanIgnoreIndex"] = new(
            x => Torch.CrossEntropy(x[0], Torch.FromArray(new long[] { 1, -100, 4, 0 })), [[4, 5]], [V(20, 28)]),
        ["CrossEntropySum"] = new(
            x => Torch.CrossEntropy(x[0], Torch.FromArray(new long[] { 1, 2, 4 }), reduction: Reduction.Sum), [[3, 5]], [V(15, 29)]),
        ["Attention"] = new(x => Torch.ScaledDotProductAttention(x[0], x[1], x[2], isCausal: false),
            [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]], [V(24, 30), V(24, 31), V(24, 32)]),
        ["AttentionCausal"] = new(x => Torch.ScaledDotProductAttention(x[0], x[1], x[2], isCausal: true),
            [[1, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]], [V(24, 33), V(24, 34), V(24, 35)]),
        ["CopyFrom"] = new(x => x[0].Clone().CopyFrom(x[1] * 2.0), [[2, 3], [3]], [V(6, 36), V(3, 37)]),
        ["AddInPlace"] = new(x => x[0].Clone().AddInPlace(x[1], 0.5), [[2, 3], [2, 3]], [V(6, 38), V(6, 39)]),
        ["MulInPlace"] = Unary(x => x.Clone().MulInPlace(3.0)),
        ["Clamp"] = Unary(x => x.Clamp(-0.5, 0.7)),
        ["ClampMinOnly"] = Unary(x => x.Clamp(0.1, null)),
        ["Norm2"] = Unary(x => x.Norm()),
        ["Norm3"] = Unary(x => x.Norm(3)),
        ["Stack"] = new(x => Torch.Stack([x[0], x[1]], 1), [[2, 3], [2, 3]], [V(6, 41), V(6, 42)]),
        ["InPlaceArithmetic"] = new(x => x[0].Clone().MulInPlace(x[1]).DivInPlace(x[2]).SubInPlace(x[1]),
            [[2, 3], [2, 3], [3]], [V(6, 43), V(6, 44), Positive(3, 45)]),
        ["Addcmul"] = new(x => x[0].Clone().AddcmulInPlace(x[1], x[2], 0.5), [[2, 3], [2, 3], [2, 3]], [V(6, 46), V(6, 47), V(6, 48)]),
        ["Addcdiv"] = new(x => x[0].Clone().AddcdivInPlace(x[1], x[2], -0.5), [[2, 3], [2, 3], [2, 3]], [V(6, 49), V(6, 50), Positive(6, 51)]),
        ["Lerp"] = new(x => x[0].Clone().LerpInPlace(x[1], 0.3), [[2, 3], [2, 3]], [V(6, 52), V(6, 53)]),
        ["SqrtInPlace"] = Unary(x => x.Clone().SqrtInPlace(), Positive(6, 54)),
    };

    public static TheoryData<string> Ops() => new(s_cases.Keys);

    [Theory]
    [MemberData(nameof(Ops))]
    public void AnalyticGradientMatchesFiniteDifferences(string op)
    {
        var c = s_cases[op];
        var error = GradientChecker.MaxRelativeError(c.Function, c.Shapes, c.Values);
        output.WriteLine($"{op}: max relative error {error:E2} (tolerance {Tolerance:E0})");
        Assert.True(error < Tolerance, $"{op}: max relative error {error:E2} exceeds {Tolerance:E0}");
    }

    [Fact]
    public void CheckerDetectsAWrongGradient()
    {
        // A function whose autograd graph is cut (Detach) has analytic gradient 0 but numeric gradient 1:
        // the checker must report a large error, or it could not catch a broken op.
        var error = GradientChecker.MaxRelativeError(x => x[0].Detach() + x[0] * 0.0, [[3]], [V(3, 40)]);
        Assert.True(error > 0.5, $"expected a large error, got {error}");
    }
}
