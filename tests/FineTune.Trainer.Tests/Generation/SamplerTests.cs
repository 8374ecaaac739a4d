using FineTune.Trainer.Generation;
using Xunit;

namespace FineTune.Trainer.Tests.Generation;

/// <summary>
/// Sampling on a hand-made distribution p = (0.5, 0.25, 0.15, 0.1) given as log-probabilities, so every kept set and
/// renormalized probability can be written down (and matches transformers' TopK/TopP warpers: top-p removes the
/// tokens whose ascending cumulative probability is at most 1 - p).
/// </summary>
public sealed class SamplerTests
{
    private static readonly float[] s_logits = [MathF.Log(0.5f), MathF.Log(0.25f), MathF.Log(0.15f), MathF.Log(0.1f)];

    private static void AssertDistribution(double[] expected, SamplingOptions options)
    {
        double[] actual = Sampler.Distribution(s_logits, options);
        Assert.Equal(expected.Length, actual.Length);
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-6, $"p[{i}] = {actual[i]}, expected {expected[i]}");
    }

    [Fact]
    public void TemperatureOneKeepsTheDistribution() => AssertDistribution([0.5, 0.25, 0.15, 0.1], new(1.0));

    [Fact]
    public void TemperatureTwoFlattensIt()
    {
        // softmax(log p / 2) is proportional to sqrt(p)
        double[] root = [Math.Sqrt(0.5), Math.Sqrt(0.25), Math.Sqrt(0.15), Math.Sqrt(0.1)];
        AssertDistribution(root.Select(r => r / root.Sum()).ToArray(), new(2.0));
    }

    [Theory]
    [InlineData(1, new[] { 1.0, 0, 0, 0 })]
    [InlineData(2, new[] { 2.0 / 3, 1.0 / 3, 0, 0 })]
    [InlineData(3, new[] { 0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0 })]
    [InlineData(4, new[] { 0.5, 0.25, 0.15, 0.1 })]
    public void TopKKeepsTheKMostLikely(int k, double[] expected) => AssertDistribution(expected, new(1.0, TopK: k));

    [Theory]
    [InlineData(0.5, new[] { 1.0, 0, 0, 0 })]                       // 0.5 alone reaches 0.5
    [InlineData(0.7, new[] { 2.0 / 3, 1.0 / 3, 0, 0 })]             // 0.5 + 0.25 = 0.75
    [InlineData(0.8, new[] { 0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0 })] // 0.9
    [InlineData(0.95, new[] { 0.5, 0.25, 0.15, 0.1 })]
    public void TopPKeepsTheSmallestSetReachingP(double p, double[] expected) => AssertDistribution(expected, new(1.0, TopP: p));

    [Fact]
    public void TopKThenTopP()
    {
        // top-k 3 renormalizes to (0.556, 0.278, 0.167); top-p 0.8 then needs 0.556 + 0.278 = 0.833
        AssertDistribution([2.0 / 3, 1.0 / 3, 0, 0], new(1.0, TopK: 3, TopP: 0.8));
    }

    [Fact]
    public void TopKKeepsTiesAtTheBoundary()
    {
        double[] p = Sampler.Distribution([1f, 1f, 1f, 0f], new(1.0, TopK: 1));
        Assert.All(p[..3], x => Assert.True(Math.Abs(x - 1.0 / 3) < 1e-12));
        Assert.Equal(0, p[3]);
    }

    [Fact]
    public void GreedyIsTheArgMaxAndDrawsNothing()
    {
        var sampler = new Sampler(SamplingOptions.Greedy);
        Assert.Equal(0, sampler.Next(s_logits));
        Assert.Equal(2, sampler.Next([0f, 1f, 3f, 2f]));
    }

    [Fact]
    public void ASeedFixesTheDrawsAndTheFrequenciesFollowTheDistribution()
    {
        int[] Draws(ulong seed)
        {
            var sampler = new Sampler(new SamplingOptions(1.0, Seed: seed));
            return Enumerable.Range(0, 20_000).Select(_ => sampler.Next(s_logits)).ToArray();
        }
        int[] first = Draws(42);
        Assert.Equal(first, Draws(42));
        Assert.NotEqual(first.Take(100), Draws(43).Take(100));
        double[] expected = [0.5, 0.25, 0.15, 0.1];
        for (int i = 0; i < 4; i++)
            Assert.InRange(first.Count(d => d == i) / 20_000.0, expected[i] - 0.015, expected[i] + 0.015);
    }

    [Theory]
    [InlineData(-1, 0, 1.0, "--temperature")]
    [InlineData(1, -1, 1.0, "--top-k")]
    [InlineData(1, 0, 0.0, "--top-p")]
    [InlineData(1, 0, 1.5, "--top-p")]
    public void ImpossibleOptionsAreUserErrors(double temperature, int topK, double topP, string option)
    {
        var e = Assert.Throws<UserErrorException>(() => new Sampler(new SamplingOptions(temperature, topK, topP)));
        Assert.StartsWith(option, e.Message);
    }
}
