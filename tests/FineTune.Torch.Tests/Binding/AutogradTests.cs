using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>
/// Autograd semantics: gradient arguments, accumulation, ZeroGrad, Detach, NoGrad, torch.autograd.grad, and
/// back-propagating a recomputed sub-graph (one layer) with a given output gradient, which must reproduce the
/// gradients of the whole graph.
/// </summary>
public sealed class AutogradTests
{
    private static Tensor Leaf(double[] values, params long[] shape)
    {
        var t = Torch.FromArray(values, shape.Length == 0 ? [values.Length] : shape);
        t.RequiresGrad = true;
        return t;
    }

    [Fact]
    public void BackwardWithGradientArgumentAccumulatesAndZeroGradClears()
    {
        using var scope = TensorScope.Enter();
        var x = Leaf([1, 2, 3]);
        Assert.True(x.RequiresGrad);
        Assert.True(x.IsLeaf);
        Assert.Null(x.Grad);
        var y = x * x;
        Assert.False(y.IsLeaf);
        // dy/dx = 2x, contracted with g = [1, 10, 100]: [2, 40, 600]
        var g = Torch.FromArray(new double[] { 1, 10, 100 });
        y.Backward(g, retainGraph: true);
        Assert.Equal(new double[] { 2, 40, 600 }, x.Grad!.ToArray<double>());
        y.Backward(g);
        Assert.Equal(new double[] { 4, 80, 1200 }, x.Grad!.ToArray<double>());
        x.ZeroGrad();
        Assert.Equal(new double[] { 0, 0, 0 }, x.Grad!.ToArray<double>());
    }

    [Fact]
    public void DetachAndNoGradStopRecording()
    {
        using var scope = TensorScope.Enter();
        var x = Leaf([1, 2]);
        Assert.False(x.Detach().RequiresGrad);
        Assert.True(Torch.IsGradEnabled);
        using (Torch.NoGrad())
        {
            Assert.False(Torch.IsGradEnabled);
            Assert.False((x * 2.0).RequiresGrad);
            using (Torch.EnableGrad())
            {
                Assert.True((x * 2.0).RequiresGrad);
            }
            Assert.False(Torch.IsGradEnabled);
            // in-place updates of a leaf that requires grad are allowed under NoGrad (optimizer steps)
            x.AddInPlace(Torch.Ones([2], DType.Float64), -1.0);
        }
        Assert.True(Torch.IsGradEnabled);
        Assert.True((x * 2.0).RequiresGrad);
        Assert.Equal(new double[] { 0, 1 }, x.ToArray<double>());
    }

    [Fact]
    public void GradReturnsInputGradientsWithoutTouchingDotGrad()
    {
        using var scope = TensorScope.Enter();
        var a = Leaf([1, 2]);
        var b = Leaf([3, 4]);
        var unused = Leaf([0]);
        // L = sum(a * b): dL/da = b, dL/db = a
        var loss = (a * b).Sum();
        var grads = Torch.Grad([loss], [a, b, unused], allowUnused: true);
        Assert.Equal(new double[] { 3, 4 }, grads[0]!.ToArray<double>());
        Assert.Equal(new double[] { 1, 2 }, grads[1]!.ToArray<double>());
        Assert.Null(grads[2]);
        Assert.Null(a.Grad);
        Assert.Null(b.Grad);
    }

    [Fact]
    public void RecomputedLayerBackwardMatchesWholeGraph()
    {
        using var scope = TensorScope.Enter();
        using var generator = new Generator(11);
        var x = Torch.Randn([3, 4], generator, DType.Float64);
        var w1 = Torch.Randn([5, 4], generator, DType.Float64);
        var w2 = Torch.Randn([2, 5], generator, DType.Float64);
        w1.RequiresGrad = true;
        w2.RequiresGrad = true;
        var targets = Torch.FromArray(new long[] { 0, 1, 1 });
        Tensor Layer1(Tensor input) => Torch.Linear(input, w1).Silu();
        Tensor Loss(Tensor hidden) => Torch.CrossEntropy(Torch.Linear(hidden, w2), targets);

        // Whole graph.
        Loss(Layer1(x)).Backward();
        var w1Whole = w1.Grad!.ToArray<double>();
        var w2Whole = w2.Grad!.ToArray<double>();
        w1.Grad = null;
        w2.Grad = null;

        // Layer by layer: forward layer 1 without a graph, keep only its output (the saved activation).
        Tensor saved;
        using (Torch.NoGrad())
        {
            saved = Layer1(x);
        }
        var hidden = saved.Detach();
        hidden.RequiresGrad = true;
        Loss(hidden).Backward();
        var hiddenGrad = hidden.Grad!;
        // Recompute layer 1 with grad from its saved input, then back-propagate the given output gradient.
        Torch.Backward([Layer1(x)], [hiddenGrad]);

        Assert.Equal(w2Whole, w2.Grad!.ToArray<double>());
        var w1Split = w1.Grad!.ToArray<double>();
        for (var i = 0; i < w1Whole.Length; i++)
        {
            Assert.Equal(w1Whole[i], w1Split[i], 12);
        }
        Assert.Contains(w1Whole, v => Math.Abs(v) > 1e-3);
    }
}
