using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>libtorch errors arrive as TorchException with libtorch's message (no C++ backtrace), and the process keeps working.</summary>
public sealed class ErrorTests
{
    private static void AssertNoBacktrace(TorchException e)
    {
        Assert.DoesNotContain("frame #", e.Message);
        Assert.DoesNotContain("Exception raised from", e.Message);
    }

    [Fact]
    public void ShapeMismatchThrowsLibtorchMessageAndProcessKeepsWorking()
    {
        using var scope = TensorScope.Enter();
        var a = Torch.Ones([2, 3]);
        var b = Torch.Ones([4, 5]);
        var e = Assert.Throws<TorchException>(() => Torch.MatMul(a, b));
        Assert.Contains("mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", e.Message);
        AssertNoBacktrace(e);
        // the same tensors still work afterwards
        Assert.Equal(new long[] { 2, 2 }, Torch.MatMul(a, b.Narrow(0, 0, 3).Narrow(1, 0, 2)).Shape);
    }

    [Fact]
    public void InvalidArgumentsThrowLibtorchMessages()
    {
        using var scope = TensorScope.Enter();
        var x = Torch.Ones([2, 3]);
        var view = Assert.Throws<TorchException>(() => x.View(7));
        Assert.Contains("shape '[7]' is invalid for input of size 6", view.Message);
        AssertNoBacktrace(view);
        var dim = Assert.Throws<TorchException>(() => x.Softmax(5));
        Assert.Contains("Dimension out of range", dim.Message);
        var add = Assert.Throws<TorchException>(() => x + Torch.Ones([4]));
        Assert.Contains("must match the size of tensor b (4)", add.Message);
        var implicitGrad = Assert.Throws<TorchException>(() =>
        {
            var w = Torch.Ones([3]);
            w.RequiresGrad = true;
            (w * 2.0).Backward();
        });
        Assert.Contains("grad can be implicitly created only for scalar outputs", implicitGrad.Message);
        var embedding = Assert.Throws<TorchException>(() => Torch.Embedding(x, Torch.FromArray(new long[] { 5 })));
        Assert.Contains("index out of range", embedding.Message);
        Assert.Equal(6.0, x.Sum().Item<double>());
    }

    [Fact]
    public void BindingChecksThrowClearMessages()
    {
        using var scope = TensorScope.Enter();
        var x = Torch.Ones([2, 3]);
        Assert.Contains("holds 24 bytes but the destination has 8", Assert.Throws<TorchException>(() => x.CopyTo(new float[2].AsSpan())).Message);
        Assert.Contains("is float32 but the span holds Double", Assert.Throws<TorchException>(() => x.ToArray<double>()).Message);
        Assert.Contains("needs a tensor with one element", Assert.Throws<TorchException>(() => x.Item<float>()).Message);
        Assert.Contains("needs 8 bytes but 4 were given", Assert.Throws<TorchException>(() => Torch.FromArray(new float[] { 1 }, [2])).Message);
    }

    [Fact]
    public void EveryKindOfNativeExceptionIsCaught()
    {
        Assert.Equal(1, Native.NativeMethods.ft_test_throw(0));
        Assert.Contains("FineTune test error from TORCH_CHECK", Native.NativeMethods.LastErrorMessage());
        Assert.Equal(1, Native.NativeMethods.ft_test_throw(1));
        Assert.Equal("FineTune test error from std::runtime_error", Native.NativeMethods.LastErrorMessage());
        Assert.Equal(1, Native.NativeMethods.ft_test_throw(2));
        Assert.Contains("unknown C++ exception", Native.NativeMethods.LastErrorMessage());
    }

    [Fact]
    public void ErrorsFromManyThreadsKeepTheirOwnMessages()
    {
        Parallel.For(0, 8, i =>
        {
            using var scope = TensorScope.Enter();
            var e = Assert.Throws<TorchException>(() => Torch.Ones([i + 1]).View(i + 2));
            Assert.Contains($"shape '[{i + 2}]' is invalid for input of size {i + 1}", e.Message);
        });
    }
}
