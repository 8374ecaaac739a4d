using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Runs;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// The crash contract for LoRA with real processes: a tiny LoRA run (base generated onto NVMe, dropout on, a norm
/// trained in full, a checkpoint after every step) is killed with SIGKILL in the middle of its training loop after a
/// seeded random delay, three times; each time `run ... resume=true` continues from the newest complete checkpoint and
/// every step's loss equals bitwise that of an uninterrupted run (the dropout masks follow the step, the adapters
/// and their AdamW state come back from the checkpoint, the base is regenerated and checked against base.json).
/// </summary>
public sealed class LoraKillResumeTests
{
    private const int TrialCount = 3;
    private const int StepCount = 8;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);
    private static readonly string[] s_overrides =
    [
        $"training.max_steps={StepCount}", "checkpoint.every_steps=1", "logging.log_every_steps=1", "model.adapter=lora", "model.lora.rank=4",
        "model.lora.dropout=0.1", "model.lora.trainable=[norm]", "optimizer.lr=1e-2", "offload.params=nvme",
    ];
    private readonly ITestOutputHelper _log;

    public LoraKillResumeTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void KilledLoraRunsResumeWithBitIdenticalLosses()
    {
        using var reference = new TinyRunRecipe();
        string referenceMetrics = Path.Combine(reference.RunDirectory, RunMetricsLog.FileName);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        double trainingMilliseconds;
        using (var whole = new FinetuneProcess(["run", reference.RecipePath, .. s_overrides]))
        {
            double startup = KillResumeTests.WaitForFirstStep(whole, referenceMetrics);
            Assert.True(whole.WaitForExit(s_timeout) == 0, whole.Output);
            trainingMilliseconds = clock.Elapsed.TotalMilliseconds - startup;
        }
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(referenceMetrics);
        Assert.Equal(StepCount, expected.Count);
        _log.WriteLine($"uninterrupted: {trainingMilliseconds:0} ms of steps and checkpoints after the first step");

        var random = new Random(20261207);
        int resumedMidRun = 0;
        for (int trial = 0; trial < TrialCount; trial++)
        {
            using var tiny = new TinyRunRecipe();
            // somewhere in the middle of the loop: after the first checkpoints, before the last
            int delay = (int)(trainingMilliseconds * (0.2 + 0.6 * random.NextDouble()));
            using (var victim = new FinetuneProcess(["run", tiny.RecipePath, .. s_overrides]))
            {
                KillResumeTests.WaitForFirstStep(victim, Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
                Thread.Sleep(delay);
                victim.KillHard();
            }
            CheckpointInfo? last = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints")).List().LastOrDefault();
            _log.WriteLine($"trial {trial}: killed {delay} ms after the first step; last complete checkpoint {last?.Step.ToString() ?? "none"}");
            var (code, output) = FinetuneProcess.Run(s_timeout, ["run", tiny.RecipePath, .. s_overrides, "resume=true"]);
            Assert.True(code == 0, output);
            if (last is not null)
                Assert.Contains($"resuming from {last.DirectoryPath} (step {last.Step})", output);
            if (last is not null && last.Step < StepCount)
                resumedMidRun++;
            SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
            Assert.Equal(expected.Keys, actual.Keys);
            foreach (var (step, loss) in expected)
                Assert.True(BitConverter.DoubleToInt64Bits(loss) == BitConverter.DoubleToInt64Bits(actual[step]),
                    $"trial {trial}, step {step}: {actual[step]:R} after resuming, {loss:R} uninterrupted");
        }
        Assert.True(resumedMidRun > 0, "no trial was killed between two checkpoints; the delays missed the training loop");
    }
}
