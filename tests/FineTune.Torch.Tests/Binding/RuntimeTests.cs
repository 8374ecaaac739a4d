using FineTune.Torch;
using FineTune.Torch.Native;
using Xunit;

namespace FineTune.Torch.Tests.Binding;

/// <summary>Library identity, native library lookup, the global seed and the intra-op thread count.</summary>
[Collection(LiveCountCollection.Name)] // changes process-wide libtorch settings; runs alone
public sealed class RuntimeTests
{
    [Fact]
    public void ReportsTheLibTorchItWasBuiltAgainst()
    {
        Assert.Equal(2, Torch.NativeAbiVersion);
        Assert.Matches(@"^\d+\.\d+\.\d+", Torch.LibTorchVersion);
    }

    [Fact]
    public void NativeLibraryIsSearchedInTheDocumentedOrder()
    {
        var previous = Environment.GetEnvironmentVariable("FINETUNE_NATIVE_DIR");
        try
        {
            Environment.SetEnvironmentVariable("FINETUNE_NATIVE_DIR", "/opt/ft");
            var candidates = NativeLibraryLoader.Candidates(typeof(Tensor).Assembly).ToList();
            Assert.Equal("/opt/ft/libfinetune_torch.so", candidates[0]);
            Assert.Equal(Path.Combine(AppContext.BaseDirectory, "libfinetune_torch.so"), candidates[1]);
            Assert.Contains(candidates, c => c.EndsWith("torch/native/build/libfinetune_torch.so", StringComparison.Ordinal));
        }
        finally
        {
            Environment.SetEnvironmentVariable("FINETUNE_NATIVE_DIR", previous);
        }
    }

    [Fact]
    public void ManualSeedMakesTheDefaultGeneratorRepeatable()
    {
        using var scope = TensorScope.Enter();
        Torch.ManualSeed(42);
        var first = Torch.Randn([16]).ToArray<float>();
        Torch.ManualSeed(42);
        var second = Torch.Randn([16]).ToArray<float>();
        Torch.ManualSeed(43);
        var third = Torch.Randn([16]).ToArray<float>();
        Assert.Equal(first, second);
        Assert.NotEqual(first, third);
        // A Generator with the same seed as the global one draws the same sequence (both are mt19937 CPU generators).
        using var generator = new Generator(42);
        Assert.Equal(first, Torch.Randn([16], generator).ToArray<float>());
    }

    [Fact]
    public void SetNumThreadsChangesLibTorchsThreadCount()
    {
        var previous = Torch.NumThreads;
        try
        {
            Torch.SetNumThreads(1);
            Assert.Equal(1, Torch.NumThreads);
            Torch.SetNumThreads(2);
            Assert.Equal(2, Torch.NumThreads);
            Assert.Contains("must be positive", Assert.Throws<TorchException>(() => Torch.SetNumThreads(0)).Message);
        }
        finally
        {
            Torch.SetNumThreads(previous);
        }
    }
}
