using System.Text.Json;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Training;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// What a run prints and logs: the live line fits the terminal (it wrapped at 80 columns and left stale lines);
/// a non-finite loss or norm does not crash metrics.jsonl (JSON has no NaN) and stops the run with one sentence.
/// </summary>
public sealed class RunOutputTests
{
    private static readonly RunProgressLine s_line = new(1234, 100000, 1.23456, 3e-4, 12345, 1.5e9, 3L << 30, 8L << 30, TimeSpan.FromHours(5.5));

    [Theory]
    [InlineData(40)]
    [InlineData(60)]
    [InlineData(79)]
    public void TheProgressLineFitsTheWidthKeepingStepAndLoss(int width)
    {
        string line = s_line.Format(width);
        Assert.True(line.Length <= width, $"{line.Length} > {width}: {line}");
        Assert.StartsWith("step 1234/100000  loss 1.2346", line);
        Assert.Contains("eta 05:30:00", s_line.Format(79));
    }

    [Fact]
    public void AWideTerminalShowsEveryField()
    {
        Assert.Equal("step 1234/100000  loss 1.2346  lr 3e-4  12345 tok/s  io 1.50 GB/s  host 3.00/8.00 GiB  eta 05:30:00", s_line.Format(200));
    }

    [Fact]
    public void NonFiniteValuesAreWrittenAsStringsAndReadBack()
    {
        string folder = Directory.CreateTempSubdirectory("finetune-metrics-").FullName;
        try
        {
            using (var log = new RunMetricsLog(folder))
            {
                log.Append(Metrics(1, double.NaN, double.PositiveInfinity));
                log.Append(Metrics(2, 2.5, 1.0));
            }
            string[] lines = File.ReadAllLines(Path.Combine(folder, RunMetricsLog.FileName));
            using JsonDocument first = JsonDocument.Parse(lines[0]);
            Assert.Equal("NaN", first.RootElement.GetProperty("loss").GetString());
            Assert.Equal("Infinity", first.RootElement.GetProperty("grad_norm").GetString());
            var losses = RunMetricsLog.ReadLosses(Path.Combine(folder, RunMetricsLog.FileName));
            Assert.True(double.IsNaN(losses[1]));
            Assert.Equal(2.5, losses[2]);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    [Fact]
    public void ANonFiniteLossStopsTheRunExceptUnderFp16LossScaling()
    {
        Recipe recipe = Recipe.Parse("model:\n  config: {vocab_size: 260, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4}\ntokenizer: {kind: byte}\ndataset: {format: synthetic, seq_len: 32}\ntraining: {device: cpu, precision: fp32}\noutput_dir: /tmp/finetune-nan\n", "nan.yaml");
        string message = Assert.Throws<UserErrorException>(() => RunDivergence.Check(Metrics(7, double.NaN, double.NaN), recipe, "/runs/x/checkpoints/step_6")).Message;
        Assert.StartsWith("The loss became NaN at step 7", message);
        Assert.Contains("continue from /runs/x/checkpoints/step_6", message);
        RunDivergence.Check(Metrics(7, 2.0, 1.0), recipe, null);
    }

    [Fact]
    public void HostGbNullIsDescribedAsTheRunsReportIt()
    {
        // issue 22: documented as "80% of available memory" while runs printed "no host budget set"
        string doc = RecipeSchema.Field("offload.host_gb").Description;
        Assert.DoesNotContain("80%", doc);
        Assert.Contains("null means no budget", doc);
        var result = new RunResult
        {
            Step = 1, TotalSteps = 1, StartStep = 0, Interrupted = false, TokensPerSecond = 1, PositionsPerSecond = 1, PeakResidentByteCount = 1 << 30,
            PredictedHostPeakByteCount = 1 << 30, PoolReservedByteCount = 0, MetricsFile = "m", CheckpointDirectory = "c", HostBudgetByteCount = null,
        };
        Assert.Contains(RunSummary.Lines(result), line => line.Contains("(no host budget set)", StringComparison.Ordinal) && doc.Contains("no host budget set", StringComparison.Ordinal));
    }

    private static StepMetrics Metrics(long step, double loss, double norm) => new()
    {
        Step = step, Loss = loss, GradientNorm = norm, LearningRate = 1e-3, Skipped = false, LossScale = 1, TokenCount = 10, Seconds = 1,
        ComputeSeconds = 1, ReadWaitSeconds = 0, WriteWaitSeconds = 0, OptimizerSeconds = 0, BytesRead = 0, BytesWritten = 0,
        PoolReservedByteCount = 0, PoolPeakInUseByteCount = 0, PeakResidentByteCount = 0,
    };
}
