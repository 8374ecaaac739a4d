using FineTune.Trainer.Runs;
using FineTune.Trainer.TensorBoard;
using FineTune.Trainer.Tests.TensorBoard;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// The event files a run writes, read back with the independent reader: every required tag at the logged steps
/// (step 1, every log_every_steps, the last step), eval/loss at the eval steps, train/loss equal to metrics.jsonl
/// as float32, and a resumed session's SessionLog START at the step it resumed from.
/// </summary>
public sealed class RunTensorBoardTests
{
    private static readonly string[] s_trainTags =
    [
        MetricTags.TrainLoss, MetricTags.TrainLearningRate, MetricTags.TrainGradNorm, MetricTags.TrainTokensPerSecond,
        MetricTags.HostPeakBytes, MetricTags.PoolInUseBytes, MetricTags.ReadBytesPerSecond, MetricTags.WriteBytesPerSecond,
    ];

    [Fact]
    public void EventFilesHoldEveryTagAtTheLoggedSteps()
    {
        using var tiny = new TinyRunRecipe("eval:\n  every_steps: 3\n  fraction: 0.1\n  task_accuracy: false");
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        RunResumeTests.Execute(tiny.Load("training.max_steps=7"), cancel.Token); // stops after step 1
        RunResult result = RunResumeTests.Execute(tiny.Load("training.max_steps=7", "resume=true"), CancellationToken.None);
        Assert.Equal(7, result.Step);

        // session order: start second, then the writer's counter (numerically: both sessions may share a second,
        // and other tests in this process may have taken the counter past a power of ten)
        string[] files = Directory.GetFiles(Path.Combine(tiny.RunDirectory, "tensorboard"), "events.out.tfevents.*")
            .OrderBy(f => long.Parse(Path.GetFileName(f).Split('.')[3])).ThenBy(f => long.Parse(Path.GetFileName(f).Split('.')[^1])).ToArray();
        Assert.Equal(2, files.Length);
        var events = files.SelectMany(f => IndependentEventReader.ReadFile(f).Events).ToList();
        var stepsByTag = events.SelectMany(e => e.Values.Select(v => (v.Tag, e.Step))).GroupBy(x => x.Tag)
            .ToDictionary(g => g.Key, g => g.Select(x => x.Step).ToList());
        foreach (string tag in s_trainTags)
            Assert.Equal([1L, 2, 4, 6, 7], stepsByTag[tag]);
        Assert.Equal([3L, 6, 7], stepsByTag[MetricTags.EvalLoss]);

        // the resumed session's file starts with SessionLog START at step 1
        var resumed = IndependentEventReader.ReadFile(files[1]).Events;
        Assert.Contains(resumed, e => e.SessionLogStatus == 1 && e.Step == 1);

        SortedDictionary<long, double> losses = RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        foreach (var e in events)
            foreach (var v in e.Values.Where(v => v.Tag == MetricTags.TrainLoss))
                Assert.Equal((float)losses[e.Step], v.FloatVal.Length > 0 ? v.FloatVal[0] : v.SimpleValue!.Value);
        float eval = events.Last(e => e.Values.Any(v => v.Tag == MetricTags.EvalLoss)).Values.Single(v => v.Tag == MetricTags.EvalLoss).FloatVal[0];
        Assert.Equal((float)result.EvalLoss!.Value, eval);
        Assert.InRange(eval, 0.5f, 8f);
    }
}
