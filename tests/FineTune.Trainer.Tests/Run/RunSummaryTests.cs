using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>The end-of-run lines: the loss change reads as what happened (a rise is not "-30% lower").</summary>
public sealed class RunSummaryTests
{
    [Theory]
    [InlineData(4.0, 1.0, "loss: 4.0000 (step 1) -> 1.0000 (step 8), 75.0% lower")]
    [InlineData(3.2816, 7.6319, "loss: 3.2816 (step 1) -> 7.6319 (step 8), 132.6% higher")]
    [InlineData(2.0, 2.0, "loss: 2.0000 (step 1) -> 2.0000 (step 8), 0.0% lower")]
    public void TheLossLineSaysWhetherItFellOrRose(double first, double last, string expected)
    {
        var result = new RunResult
        {
            Step = 8, TotalSteps = 8, StartStep = 0, Interrupted = false, FirstLoss = first, LastLoss = last,
            TokensPerSecond = 100, PositionsPerSecond = 120, PeakResidentByteCount = 1L << 30, PredictedHostPeakByteCount = 1L << 30,
            HostBudgetByteCount = 2L << 30, PoolReservedByteCount = 1L << 20, MetricsFile = "m.jsonl", CheckpointDirectory = "c",
        };
        Assert.Contains(expected, RunSummary.Lines(result));
    }

    [Fact]
    public void TheLossCurveIsASparklineAndThePlotIsNamed()
    {
        var result = new RunResult
        {
            Step = 8, TotalSteps = 8, StartStep = 0, Interrupted = false, FirstLoss = 8, LastLoss = 1,
            TokensPerSecond = 100, PositionsPerSecond = 120, PeakResidentByteCount = 1L << 30, PredictedHostPeakByteCount = 1L << 30,
            PoolReservedByteCount = 1L << 20, MetricsFile = "m.jsonl", CheckpointDirectory = "c",
            LossCurve = [8, 7, 6, 5, 4, 3, 2, 1], EvalLossCurve = [6, 2], PlotFile = "run/loss.png",
        };
        IReadOnlyList<string> lines = RunSummary.Lines(result);
        Assert.Contains("train loss █▇▆▅▄▃▂▁ (8 steps)", lines);
        Assert.Contains("eval loss  █▁ (2 evaluations)", lines);
        Assert.Contains("plot: run/loss.png", lines);
    }
}
