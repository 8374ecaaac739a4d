using System.Diagnostics;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using Xunit;
using Xunit.Abstractions;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// Issue 8's crash contract with real processes: a tiny run (10 steps, a checkpoint after every step, keep_last 2)
/// is killed with SIGKILL after a seeded random delay (a third of the trials anywhere from start-up on, the rest
/// somewhere in the training loop: steps and checkpoint writes), ten times; each time `run ... resume=true` must continue from the newest complete checkpoint left on
/// disk (checked against its "resuming from" line), and the losses of every step (metrics.jsonl, full doubles,
/// the last line per step) must equal bitwise those of an uninterrupted run with the same seed.
/// </summary>
public sealed class KillResumeTests
{
    private const int TrialCount = 10;
    private const int StepCount = 10;
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);
    private readonly ITestOutputHelper _log;

    public KillResumeTests(ITestOutputHelper log) => _log = log;

    [Fact]
    public void KilledRunsResumeFromTheLastCompleteCheckpointWithBitIdenticalLosses()
    {
        string[] overrides = [$"training.max_steps={StepCount}", "checkpoint.every_steps=1", "logging.log_every_steps=1"];
        using var reference = new TinyRunRecipe();
        string referenceMetrics = Path.Combine(reference.RunDirectory, RunMetricsLog.FileName);
        double startupMilliseconds = 0;
        var clock = Stopwatch.StartNew();
        using (var whole = new FinetuneProcess(["run", reference.RecipePath, .. overrides]))
        {
            startupMilliseconds = WaitForFirstStep(whole, referenceMetrics);
            Assert.True(whole.WaitForExit(s_timeout) == 0, whole.Output);
        }
        double trainingMilliseconds = clock.Elapsed.TotalMilliseconds - startupMilliseconds;
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(referenceMetrics);
        Assert.Equal(StepCount, expected.Count);
        _log.WriteLine($"uninterrupted: first step after {startupMilliseconds:0} ms, then {trainingMilliseconds:0} ms of steps and checkpoints");

        var random = new Random(20261122);
        int resumedMidRun = 0;
        for (int trial = 0; trial < TrialCount; trial++)
        {
            using var tiny = new TinyRunRecipe();
            // every third trial: anywhere from start-up on; the others: during the training loop, whose steps and
            // checkpoint writes take nearly all of its time
            bool duringStartup = trial % 3 == 0;
            int delayMilliseconds = random.Next(duringStartup ? 100 : 0, (int)(duringStartup ? startupMilliseconds + trainingMilliseconds : trainingMilliseconds));
            using (var victim = new FinetuneProcess(["run", tiny.RecipePath, .. overrides]))
            {
                if (!duringStartup)
                    WaitForFirstStep(victim, Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
                Thread.Sleep(delayMilliseconds);
                victim.KillHard();
            }
            var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
            bool tempLeft = Directory.Exists(store.DirectoryPath) && Directory.GetDirectories(store.DirectoryPath, "*.tmp-*").Length > 0;
            CheckpointInfo? last = store.List().LastOrDefault();
            Assert.Equal(last?.Step, store.FindLatestValid()?.Step); // a complete checkpoint is never a damaged one
            _log.WriteLine($"trial {trial}: killed {delayMilliseconds} ms after {(duringStartup ? "start" : "the first step")}; last complete checkpoint {last?.Step.ToString() ?? "none"}{(tempLeft ? ", a checkpoint write was cut short" : "")}");

            var (resumeCode, resumeOutput) = FinetuneProcess.Run(s_timeout, ["run", tiny.RecipePath, .. overrides, "resume=true"]);
            Assert.True(resumeCode == 0, resumeOutput);
            if (last is null)
                Assert.DoesNotContain("resuming from", resumeOutput);
            else
                Assert.Contains($"resuming from {last.DirectoryPath} (step {last.Step})", resumeOutput);
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

    /// <summary>Waits until the run has logged its first step; returns the milliseconds waited.</summary>
    internal static double WaitForFirstStep(FinetuneProcess process, string metricsPath)
    {
        var clock = Stopwatch.StartNew();
        while (!(File.Exists(metricsPath) && new FileInfo(metricsPath).Length > 0))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"finetune exited before its first step:\n{process.Output}");
            if (clock.Elapsed > s_timeout)
                throw new TimeoutException($"no step within {s_timeout}:\n{process.Output}");
            Thread.Sleep(5);
        }
        return clock.Elapsed.TotalMilliseconds;
    }
}
