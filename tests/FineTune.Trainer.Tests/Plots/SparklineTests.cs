using FineTune.Trainer.Plots;
using Xunit;

namespace FineTune.Trainer.Tests.Plots;

public sealed class SparklineTests
{
    [Fact]
    public void EachValueGetsItsBlockBetweenMinimumAndMaximum()
    {
        Assert.Equal("▁▂▃▄▅▆▇█", Sparkline.Render([1, 2, 3, 4, 5, 6, 7, 8]));
        Assert.Equal("█▅▁", Sparkline.Render([6.0, 4.0, 1.0])); // (4 - 1) / 5 * 7 = 4.2 -> block 4
    }

    [Fact]
    public void LongCurvesAreAveragedIntoTheWidth()
    {
        // 8 values into 4 buckets of 2: means 1.5, 3.5, 5.5, 7.5
        Assert.Equal("▁▃▆█", Sparkline.Render([1, 2, 3, 4, 5, 6, 7, 8], width: 4));
        Assert.Equal(40, Sparkline.Render(Enumerable.Range(0, 1000).Select(i => (double)i).ToList()).Length);
    }

    [Fact]
    public void FlatAndNonFiniteValuesDrawSomething()
    {
        Assert.Equal("▅▅▅", Sparkline.Render([2, 2, 2]));
        Assert.Equal("▁ █", Sparkline.Render([1, double.NaN, 3]));
        Assert.Equal("", Sparkline.Render([]));
    }
}
