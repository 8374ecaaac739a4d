using FineTune.Trainer.Plots;
using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>A finished run leaves loss.png and eval.jsonl in its folder and ends its summary with the curves.</summary>
public sealed class RunPlotTests
{
    [Fact]
    public void ARunDrawsItsLossPlotAndSparklines()
    {
        using var tiny = new TinyRunRecipe("eval:\n  task_accuracy: false\n  every_steps: 4\n  fraction: 0.1");
        var output = new StringWriter();
        RunResult result = new TrainingRun(tiny.Load(), new RunProgress(output, null, 1)).Execute(CancellationToken.None);
        Assert.Equal(Path.Combine(tiny.RunDirectory, LossPlot.FileName), result.PlotFile);
        Assert.True(new FileInfo(result.PlotFile!).Length > 1000);
        RunHistory history = RunHistory.Read(tiny.RunDirectory);
        Assert.Equal(8, history.Train.Count);
        Assert.Equal([4L, 8L], history.Eval.Select(e => e.Step));
        Assert.Equal(result.EvalLoss, history.Eval[^1].Loss);
        IReadOnlyList<string> lines = RunSummary.Lines(result);
        Assert.Contains(lines, l => l.StartsWith("train loss ", StringComparison.Ordinal) && l.EndsWith("(8 steps)", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.StartsWith("eval loss  ", StringComparison.Ordinal) && l.EndsWith("(2 evaluations)", StringComparison.Ordinal));
    }
}
