using System.Diagnostics;
using System.Text.RegularExpressions;
using FineTune.Cli.Tests.Run;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tests.Runs;
using Xunit;
using Xunit.Abstractions;

namespace FineTune.Cli.Tests.Launch;

/// <summary>
/// `finetune run --nproc 2` trains with ZeRO over two real rank processes (the tiny recipe, a global batch of 4 rows,
/// 2 per rank, states and activations on each rank's own nvme_dir): a run killed hard mid-run (launcher and ranks,
/// as a crashed machine) resumes on 2 ranks with the losses of an uninterrupted 2-rank run bit for bit; a rank killed
/// mid-run ends the run within seconds with one sentence naming it, and the last complete checkpoint stays usable
/// (a 1-rank resume re-partitions its states). Both bounded: every wait has a guard.
/// </summary>
public sealed class DataParallelRunTests(ITestOutputHelper log)
{
    private static readonly TimeSpan s_guard = TimeSpan.FromSeconds(120);

    private static string[] Overrides(TinyRunRecipe tiny, int steps) =>
        ["training.batch_size=4", $"training.max_steps={steps}", "logging.log_every_steps=1", $"offload.nvme_dir={tiny.RunDirectory}/swap-{{rank}}"];

    [Fact]
    public void TwoRanksKilledMidRunResumeOnTwoRanksWithBitIdenticalLosses()
    {
        const int steps = 6;
        using var reference = new TinyRunRecipe();
        var clock = Stopwatch.StartNew();
        var (code, output) = FinetuneProcess.Run(s_guard, ["run", reference.RecipePath, .. Overrides(reference, steps), "--nproc", "2", "--timeout", "30"]);
        Assert.True(code == 0, output);
        Assert.Contains("ranks: 2, peak host memory (VmHWM) per rank 0: ", output);
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(Path.Combine(reference.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(steps, expected.Count);
        log.WriteLine($"uninterrupted 2-rank run: {clock.Elapsed.TotalSeconds:0.0} s");

        using var tiny = new TinyRunRecipe();
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        using (var victim = new FinetuneProcess(["run", tiny.RecipePath, .. Overrides(tiny, steps), "--nproc", "2", "--timeout", "30"]))
        {
            WaitUntil(() => store.List().Count > 0, victim, "a first checkpoint");
            victim.KillHard(); // the launcher and both ranks, SIGKILL
        }
        CheckpointInfo last = store.List()[^1];
        Assert.Equal(last.Step, store.FindLatestValid()?.Step);
        Assert.True(Directory.Exists(Path.Combine(last.DirectoryPath, "optimizer", "rank-1")), "each rank saves its share of the states");
        log.WriteLine($"killed after checkpoint step_{last.Step}");

        (code, output) = FinetuneProcess.Run(s_guard, ["run", tiny.RecipePath, .. Overrides(tiny, steps), "resume=true", "--nproc", "2", "--timeout", "30"]);
        Assert.True(code == 0, output);
        Assert.Contains($"resuming from {last.DirectoryPath} (step {last.Step})", output);
        SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (step, loss) in expected)
            Assert.True(BitConverter.DoubleToInt64Bits(loss) == BitConverter.DoubleToInt64Bits(actual[step]), $"step {step}: {actual[step]:R} after resuming, {loss:R} uninterrupted");
    }

    [Fact]
    public void ARankKilledMidRunEndsTheRunWithOneSentenceAndTheLastCheckpointResumesOnOneRank()
    {
        using var tiny = new TinyRunRecipe();
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        string logs = Path.Combine(tiny.RunDirectory, "logs");
        int code;
        string output;
        TimeSpan afterKill;
        int victim;
        using (var launch = new FinetuneProcess(["run", tiny.RecipePath, .. Overrides(tiny, 400), "--nproc", "2", "--timeout", "20"]))
        {
            victim = LauncherTests.WaitForRankPid(launch, rank: 1);
            WaitUntil(() => store.List().Count > 0, launch, "a first checkpoint");
            using (Process.Start("kill", ["-KILL", victim.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            {
            }
            var clock = Stopwatch.StartNew();
            code = launch.WaitForExit(s_guard);
            afterKill = clock.Elapsed;
            output = launch.Output;
        }
        Assert.True(code == 2, output);
        string error = Assert.Single(output.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Equal($"error: rank 1 died (killed by SIGKILL) and the other rank was stopped; its output is in {logs}/rank-1.log.", error.TrimEnd());
        // rank 0's collective failed at once (the connection closed) and named rank 1; the launcher gives ranks 10 s after a failure
        Assert.Matches(@"error: rank 0 of 2: [a-z_]+( of [0-9,]+ [a-z0-9]+)? failed after [0-9.]+ s because rank 1 stopped answering", File.ReadAllText(Path.Combine(logs, "rank-0.log")));
        Assert.True(afterKill < TimeSpan.FromSeconds(30), $"the run took {afterKill.TotalSeconds:0.0} s to end after rank 1 died");
        Assert.False(LauncherTests.IsRunning(victim));
        CheckpointInfo last = store.List()[^1];
        Assert.Equal(last.Step, store.FindLatestValid()?.Step); // the last complete checkpoint is a good one
        log.WriteLine($"rank 1 killed after checkpoint step_{last.Step}; the run ended {afterKill.TotalSeconds:0.0} s later");

        // one process resumes the 2-rank checkpoint: its states re-partition
        (code, output) = FinetuneProcess.Run(s_guard, ["run", tiny.RecipePath, .. Overrides(tiny, (int)last.Step + 2), "resume=true"]);
        Assert.True(code == 0, output);
        Assert.Contains($"resuming from {last.DirectoryPath} (step {last.Step})", output);
        Assert.Equal(last.Step + 2, RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName)).Keys.Max());
    }

    private static void WaitUntil(Func<bool> condition, FinetuneProcess process, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.False(process.HasExited, $"the run ended before {what}:\n{process.Output}");
            Assert.True(clock.Elapsed < s_guard, $"no {what} within {s_guard}:\n{process.Output}");
            Thread.Sleep(20);
        }
    }
}
