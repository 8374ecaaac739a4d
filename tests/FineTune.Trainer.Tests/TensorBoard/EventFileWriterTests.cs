using System.Text.RegularExpressions;
using FineTune.Trainer.TensorBoard;
using Xunit;

namespace FineTune.Trainer.Tests.TensorBoard;

/// <summary>Writes real event files and reads them back with <see cref="IndependentEventReader"/>.</summary>
public sealed class EventFileWriterTests : IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "ft-tb-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
            Directory.Delete(_directory, recursive: true);
    }

    [Fact]
    public void FileNameFollowsThePythonWriter()
    {
        using var writer = new EventFileWriter(_directory, TimeSpan.FromSeconds(5), wallClockSeconds: () => 1700000000.25);
        string name = Path.GetFileName(writer.FilePath);
        Assert.Matches(new Regex($@"^events\.out\.tfevents\.1700000000\.{Regex.Escape(Environment.MachineName)}\.{Environment.ProcessId}\.\d+$"), name);
    }

    [Fact]
    public void FirstRecordIsFileVersionAndIsOnDiskBeforeAnyFlush()
    {
        using var writer = new EventFileWriter(_directory, TimeSpan.FromHours(1), wallClockSeconds: () => 1700000000.5);
        var (events, truncated) = IndependentEventReader.ReadFile(writer.FilePath);
        Assert.False(truncated);
        var first = Assert.Single(events);
        Assert.Equal("brain.Event:2", first.FileVersion);
        Assert.Equal(1700000000.5, first.WallTime);
    }

    [Fact]
    public void LoggerWritesScalarsTextHParamsAndEndThatReadBack()
    {
        string path;
        using (var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromHours(1), wallClockSeconds: () => 1700000000.0))
        {
            path = logger.FilePath;
            logger.LogRecipe(0, "training:\n  batch_size: 4\n");
            logger.LogHParams([new("optimizer.lr", 3e-4), new("dataset.format", "alpaca"), new("dataset.packing", true)], MetricTags.HParamsMetrics);
            for (long step = 1; step <= 3; step++)
                logger.Log(step, [new(MetricTags.TrainLoss, 4.0 - step / 2.0), new(MetricTags.TrainLearningRate, step * 1e-4)]);
            logger.Log(3, MetricTags.EvalLoss, 2.25);
            logger.LogSessionEnd(succeeded: true);
        }

        var (events, truncated) = IndependentEventReader.ReadFile(path);
        Assert.False(truncated);
        Assert.Equal("brain.Event:2", events[0].FileVersion);

        var values = events.SelectMany(e => e.Values.Select(v => (e.Step, v))).ToList();
        var losses = values.Where(x => x.v.Tag == MetricTags.TrainLoss).ToList();
        Assert.Equal([1L, 2L, 3L], losses.Select(x => x.Step));
        Assert.Equal([3.5f, 3.0f, 2.5f], losses.Select(x => x.v.FloatVal.Single()));
        Assert.All(losses, x => Assert.Equal((1, "scalars"), (x.v.Dtype!.Value, x.v.PluginName)));
        Assert.All(losses, x => Assert.Empty(x.v.ShapeDims));
        var lr = values.Where(x => x.v.Tag == MetricTags.TrainLearningRate).Select(x => x.v.FloatVal.Single()).ToList();
        Assert.Equal([1e-4f, 2e-4f, 3e-4f], lr);
        var eval = Assert.Single(values, x => x.v.Tag == MetricTags.EvalLoss);
        Assert.Equal((3L, 2.25f), (eval.Step, eval.v.FloatVal.Single()));

        var text = Assert.Single(values, x => x.v.Tag == "recipe/text_summary").v;
        Assert.Equal((7, "text"), (text.Dtype!.Value, text.PluginName));
        Assert.Equal([1L], text.ShapeDims);
        Assert.Equal("    training:\n      batch_size: 4\n", Assert.Single(text.StringVal));

        string[] hparamTags = values.Where(x => x.v.PluginName == "hparams").Select(x => x.v.Tag).ToArray();
        Assert.Equal(["_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"], hparamTags);
        var experiment = IndependentEventReader.Fields(values.First(x => x.v.Tag == "_hparams_/experiment").v.PluginContent).Single();
        Assert.Equal(2, experiment.Number);
        var infoNames = IndependentEventReader.Fields(experiment.Bytes).Where(f => f.Number == 4)
            .Select(f => System.Text.Encoding.UTF8.GetString(IndependentEventReader.Fields(f.Bytes)[0].Bytes)).ToArray();
        Assert.Equal(["optimizer.lr", "dataset.format", "dataset.packing"], infoNames);
    }

    [Fact]
    public void ResumeWritesSessionLogStartAtTheResumeStep()
    {
        string path;
        using (var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromSeconds(5), resumeStep: 40))
        {
            path = logger.FilePath;
            logger.Log(41, MetricTags.TrainLoss, 1.0);
        }
        var (events, _) = IndependentEventReader.ReadFile(path);
        Assert.Equal(("brain.Event:2", 40L), (events[0].FileVersion, events[0].Step));
        Assert.Equal((1, 40L), (events[1].SessionLogStatus!.Value, events[1].Step));
        Assert.Equal(41L, events[2].Step);
    }

    [Fact]
    public void TruncatedTrailingRecordIsEndOfData()
    {
        string path;
        using (var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromSeconds(5)))
        {
            path = logger.FilePath;
            logger.Log(1, MetricTags.TrainLoss, 2.0);
            logger.Log(2, MetricTags.TrainLoss, 1.0);
        }
        byte[] whole = File.ReadAllBytes(path);
        var (records, _) = IndependentEventReader.ReadRecords(whole);
        int lastRecordByteCount = 16 + records[^1].Length;
        for (int cut = 1; cut < lastRecordByteCount; cut += 5)
        {
            var (partial, truncated) = IndependentEventReader.ReadRecords(whole[..^cut]);
            Assert.True(truncated);
            Assert.Equal(records.Count - 1, partial.Count);
        }
    }

    [Fact]
    public void FlippedByteFailsACrc()
    {
        string path;
        using (var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromSeconds(5)))
        {
            path = logger.FilePath;
            logger.Log(1, MetricTags.TrainLoss, 2.0);
        }
        byte[] bytes = File.ReadAllBytes(path);
        for (int i = 0; i < bytes.Length; i++)
        {
            byte[] damaged = (byte[])bytes.Clone();
            damaged[i] ^= 0x10;
            Assert.ThrowsAny<Exception>(() => IndependentEventReader.ReadRecords(damaged));
        }
    }

    [Fact]
    public void FlushMakesQueuedEventsVisibleWhileTheFileStaysOpen()
    {
        using var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromHours(1));
        for (long step = 1; step <= 100; step++)
            logger.Log(step, MetricTags.TrainLoss, step);
        logger.Flush();
        var (events, truncated) = IndependentEventReader.ReadFile(logger.FilePath);
        Assert.False(truncated);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), events.Skip(1).Select(e => e.Step));
    }

    [Fact]
    public void StartFromARecipeLogsItsTextAndHParamsUnderOutputDirTensorboard()
    {
        var recipe = FineTune.Trainer.Recipes.Recipe.Parse(
            $"model: {{config: {{vocab_size: 256, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 1, num_attention_heads: 2}}}}\n" +
            $"dataset: {{format: synthetic, seq_len: 16}}\noutput_dir: {_directory}\nlogging: {{flush_seconds: 0.5}}\n", "r.yaml");
        string path;
        using (TrainingMetricsLogger logger = TrainingMetricsLogger.Start(recipe)!)
        {
            path = logger.FilePath;
            logger.Log(1, MetricTags.TrainLoss, 5.5);
        }
        Assert.Equal(Path.Combine(_directory, "tensorboard"), Path.GetDirectoryName(path));
        var values = IndependentEventReader.ReadFile(path).Events.SelectMany(e => e.Values).ToList();
        Assert.Equal(recipe.ToYaml().Split('\n').Length - 1,
            Assert.Single(values, v => v.Tag == "recipe/text_summary").StringVal.Single().Split('\n').Count(line => line.StartsWith("    ", StringComparison.Ordinal)));
        Assert.Single(values, v => v.Tag == "_hparams_/session_start_info");
        Assert.Equal(5.5f, Assert.Single(values, v => v.Tag == MetricTags.TrainLoss).FloatVal.Single());

        string resumed;
        using (TrainingMetricsLogger logger = TrainingMetricsLogger.Start(recipe, resumeStep: 1)!)
            resumed = logger.FilePath;
        var resumedEvents = IndependentEventReader.ReadFile(resumed).Events;
        Assert.Equal((1, 1L), (resumedEvents[1].SessionLogStatus!.Value, resumedEvents[1].Step));
        Assert.DoesNotContain(resumedEvents.SelectMany(e => e.Values), v => v.PluginName == "hparams");
        Assert.Null(TrainingMetricsLogger.Start(FineTune.Trainer.Recipes.Recipe.Parse(recipe.ToYaml(), "r2.yaml", ["logging.tensorboard=false"])));
    }

    [Fact]
    public void BackgroundThreadFlushesOnItsIntervalWithoutAnExplicitFlush()
    {
        // 64 KiB of FileStream buffer would hide this small event until a flush; only the interval flush can show it.
        using var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromMilliseconds(100));
        logger.Log(7, MetricTags.TrainLoss, 0.25);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        List<IndependentEventReader.Event> events;
        do
        {
            Thread.Sleep(50);
            events = IndependentEventReader.ReadFile(logger.FilePath).Events;
        }
        while (events.Count < 2 && DateTime.UtcNow < deadline);
        Assert.Equal(7L, events[^1].Step);
    }

    [Fact]
    public void RepeatedStepForATagIsRejected()
    {
        using var logger = new TrainingMetricsLogger(_directory, TimeSpan.FromSeconds(5));
        logger.Log(5, MetricTags.TrainLoss, 1.0);
        Assert.Throws<ArgumentException>(() => logger.Log(5, MetricTags.TrainLoss, 1.0));
    }
}
