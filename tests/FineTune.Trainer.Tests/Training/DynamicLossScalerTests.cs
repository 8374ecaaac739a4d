using FineTune.Trainer.Training;
using Xunit;

namespace FineTune.Trainer.Tests.Training;

public class DynamicLossScalerTests
{
    [Fact]
    public void BacksOffOnOverflowAndGrowsAfterInterval()
    {
        var scaler = new DynamicLossScaler(initialScale: 1024, growthInterval: 3);
        Assert.False(scaler.Update(gradientsFinite: false));
        Assert.Equal(512, scaler.Scale);
        Assert.Equal(1, scaler.SkippedSteps);
        Assert.True(scaler.Update(true));
        Assert.True(scaler.Update(true));
        Assert.Equal(512, scaler.Scale);
        Assert.True(scaler.Update(true));
        Assert.Equal(1024, scaler.Scale);
        Assert.Equal(0, scaler.CleanSteps);
    }

    [Fact]
    public void RestoreContinuesExactly()
    {
        var a = new DynamicLossScaler(initialScale: 8, growthInterval: 2);
        a.Update(true);
        var b = new DynamicLossScaler(growthInterval: 2);
        b.Restore(a.Scale, a.CleanSteps, a.SkippedSteps);
        Assert.Equal(a.Update(true), b.Update(true));
        Assert.Equal(a.Scale, b.Scale);
        Assert.Equal(16, b.Scale);
    }
}
