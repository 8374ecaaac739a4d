using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>Deterministic disposal: scopes free what they own, moved tensors survive, and nothing leaks.</summary>
[Collection(LiveCountCollection.Name)]
public sealed class ScopeAndLeakTests
{
    [Fact]
    public void TenThousandOpsInsideScopesLeaveNoLiveTensors()
    {
        var before = LiveCountCollection.SettledLiveCount();
        using var generator = new Generator(3);
        var weight = Torch.Randn([8, 8], generator, DType.Float32);
        weight.RequiresGrad = true;
        var operations = 0;
        for (var iteration = 0; iteration < 100; iteration++)
        {
            using var scope = TensorScope.Enter();
            var x = Torch.Randn([4, 8], generator);
            operations += 1;
            for (var i = 0; i < 24; i++)
            {
                x = Torch.Linear(x, weight).Silu().Softmax(-1) * 2.0;
                operations += 4;
            }
            x.Sum().Backward();
            operations += 2;
            var gradient = weight.Grad!;
            operations += 1;
            Assert.True(Tensor.LiveCount > before + 50, "tensors of the scope are alive until it ends");
            gradient.Dispose();
        }
        weight.Grad = null;
        weight.Dispose();
        Assert.True(operations >= 10_000, $"only {operations} operations ran");
        Assert.Equal(before, Tensor.LiveCount);
    }

    [Fact]
    public void MovedAndDetachedTensorsSurviveTheirScope()
    {
        var before = LiveCountCollection.SettledLiveCount();
        Tensor kept;
        Tensor detached;
        using (var outer = TensorScope.Enter())
        {
            using (var inner = TensorScope.Enter())
            {
                Torch.Zeros([2]);
                kept = (Torch.Ones([2]) * 3.0).MoveToOuterScope();
                detached = inner.Detach(Torch.Full([1], 5.0));
            }
            Assert.Equal(before + 2, Tensor.LiveCount);
            Assert.Equal(new float[] { 3, 3 }, kept.ToArray<float>());
            Assert.Equal(1, outer.OwnedCount);
        }
        Assert.True(kept.IsDisposed, "the outer scope disposed the tensor moved into it");
        Assert.False(detached.IsDisposed);
        Assert.Equal(5f, detached.Item<float>());
        detached.Dispose();
        detached.Dispose();
        Assert.Equal(before, Tensor.LiveCount);
    }

    [Fact]
    public void TensorsOutsideAnyScopeBelongToTheCaller()
    {
        var before = LiveCountCollection.SettledLiveCount();
        Assert.Null(TensorScope.Current);
        var t = Torch.Ones([3]);
        Assert.Equal(before + 1, Tensor.LiveCount);
        t.Dispose();
        Assert.Equal(before, Tensor.LiveCount);
        Assert.Throws<ObjectDisposedException>(() => t.Shape);
    }

    [Fact]
    public void ScopesMustEndInnermostFirst()
    {
        var outer = TensorScope.Enter();
        var inner = TensorScope.Enter();
        Assert.Throws<InvalidOperationException>(() => outer.Dispose());
        inner.Dispose();
        outer.Dispose();
        Assert.Null(TensorScope.Current);
    }
}
