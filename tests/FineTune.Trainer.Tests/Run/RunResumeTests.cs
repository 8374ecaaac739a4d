using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// The loop's stop-and-resume contract in-process: a cancelled run (what Ctrl-C / SIGTERM do) stops at the end of
/// the current step with a checkpoint of that step, and resuming from it reproduces the uninterrupted run's losses
/// bitwise (metrics.jsonl keeps full doubles). The kill -9 trials in FineTune.Cli.Tests do the same with real processes.
/// </summary>
public sealed class RunResumeTests
{
    [Fact]
    public void CancelledRunResumesWithBitIdenticalLosses()
    {
        using var reference = new TinyRunRecipe();
        RunResult whole = Execute(reference.Load(), CancellationToken.None);
        Assert.False(whole.Interrupted);
        Assert.Equal(8, whole.Step);
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(Path.Combine(reference.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(Enumerable.Range(1, 8).Select(i => (long)i), expected.Keys);
        Assert.True(expected[8] < expected[1] - 0.3, $"loss should fall: {expected[1]} -> {expected[8]}");
        // keep_last 2 with a checkpoint every 2 steps and at the end
        Assert.Equal([6L, 8L], new CheckpointStore(Path.Combine(reference.RunDirectory, "checkpoints")).List().Select(c => c.Step));

        using var stopped = new TinyRunRecipe();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        RunResult first = Execute(stopped.Load(), cancel.Token);
        Assert.True(first.Interrupted);
        Assert.Equal(1, first.Step);
        Assert.EndsWith("step_1", first.LastCheckpoint);

        RunResult resumed = Execute(stopped.Load("resume=true"), CancellationToken.None);
        Assert.Equal(1, resumed.StartStep);
        Assert.Equal(8, resumed.Step);
        SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(stopped.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (step, loss) in expected)
            Assert.True(BitConverter.DoubleToInt64Bits(loss) == BitConverter.DoubleToInt64Bits(actual[step]), $"step {step}: {loss:R} vs {actual[step]:R}");
    }

    [Fact]
    public void FreshRunIntoAFolderWithCheckpointsIsRefused()
    {
        using var tiny = new TinyRunRecipe();
        Execute(tiny.Load("training.max_steps=2"), CancellationToken.None);
        var error = Assert.Throws<UserErrorException>(() => Execute(tiny.Load("training.max_steps=2"), CancellationToken.None));
        Assert.Contains("resume=true", error.Message);
    }

    internal static RunResult Execute(FineTune.Trainer.Recipes.Recipe recipe, CancellationToken cancel) =>
        new TrainingRun(recipe, new RunProgress(TextWriter.Null, null, 1)).Execute(cancel);
}
