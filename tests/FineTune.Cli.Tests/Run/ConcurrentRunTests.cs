using System.Diagnostics;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// Issue 21: two runs into one output_dir both "succeeded", overwriting each other's checkpoints and interleaving
/// metrics.jsonl. With a live run holding its folder, a second run, a resume and an export of it are each refused
/// with exit 2 and one sentence naming the holder's pid; once the holder is killed (SIGKILL: the kernel drops its
/// flock), the stale lock file does not block a resume.
/// </summary>
public sealed class ConcurrentRunTests
{
    private static readonly TimeSpan s_timeout = TimeSpan.FromSeconds(90);

    [Fact]
    public void ALiveRunsFolderIsRefusedToASecondRunAResumeAndAnExport()
    {
        using var tiny = new TinyRunRecipe();
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        string metrics = Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName);
        using (var live = new FinetuneProcess("run", tiny.RecipePath, "training.max_steps=100000", "checkpoint.every_steps=2"))
        {
            WaitFor(() => store.List().Count > 0, live);
            long linesBefore = File.ReadAllLines(metrics).Length;
            string holder = $"is in use by finetune process {live.Id} (it holds {Path.Combine(tiny.RunDirectory, RunFolderLock.FileName)})";
            var attempts = new[]
            {
                new[] { "run", tiny.RecipePath, "training.max_steps=4", "resume=true" },
                ["resume", tiny.RunDirectory, "training.max_steps=4"],
                ["export", tiny.RunDirectory, Path.Combine(tiny.OutputDirectory, "hf")],
            };
            foreach (string[] args in attempts)
            {
                var (code, _, error) = CliRunner.Run(args);
                Assert.True(code == 2, $"{args[0]}: exit {code} {error}");
                Assert.Contains(holder, error);
                Assert.Single(error.Trim().Split('\n'));
            }
            Assert.False(Directory.Exists(Path.Combine(tiny.OutputDirectory, "hf")));
            Assert.False(live.HasExited, live.Output);
            Assert.True(File.ReadAllLines(metrics).Length >= linesBefore); // still the live run's file, appended to
            live.KillHard();
        }

        // the lock file of the killed run is still there, but nobody holds it; so are its swap files, until the resume
        Assert.True(File.Exists(Path.Combine(tiny.RunDirectory, RunFolderLock.FileName)));
        string swap = Path.Combine(tiny.RunDirectory, "swap");
        Assert.NotEmpty(Directory.GetFiles(swap, "finetune-*.swap"));
        long last = store.List()[^1].Step;
        var (resumeCode, resumeOutput, resumeError) = CliRunner.Run("run", tiny.RecipePath, $"training.max_steps={last + 2}", "resume=true", "checkpoint.every_steps=2");
        Assert.True(resumeCode == 0, resumeOutput + resumeError);
        Assert.Contains($"finished {last + 2}/{last + 2} steps", resumeOutput);
        Assert.Empty(Directory.GetFiles(swap, "finetune-*.swap")); // the dead run's were removed, the resume's own deleted at its end
    }

    [Fact]
    public void TwoFreshRunsStartedTogetherIntoOneFolderTrainOnceAndRefuseTheOther()
    {
        // issue 21: both "succeeded", each overwriting the other's checkpoints and interleaving metrics.jsonl; and the
        // refused one must not take back the folders it found missing too (they are the winner's now)
        using var tiny = new TinyRunRecipe();
        const int steps = 16;
        string[] args = ["run", tiny.RecipePath, $"training.max_steps={steps}", "checkpoint.every_steps=4", "logging.log_every_steps=1"];
        using var first = new FinetuneProcess(args);
        using var second = new FinetuneProcess(args);
        int firstCode = first.WaitForExit(s_timeout), secondCode = second.WaitForExit(s_timeout);

        Assert.True(new[] { firstCode, secondCode }.Order().SequenceEqual([0, 2]), $"exits {firstCode} and {secondCode}:\n{first.Output}\n---\n{second.Output}");
        var (winner, loser) = firstCode == 0 ? (first, second) : (second, first);
        Assert.Single(loser.Output.Split('\n'), line => line.StartsWith("error: ", StringComparison.Ordinal));
        Assert.Contains($"error: output_dir {tiny.RunDirectory} is in use by finetune process {winner.Id} (it holds {Path.Combine(tiny.RunDirectory, RunFolderLock.FileName)}); wait for it to finish or stop it, or choose another output_dir.\n", loser.Output);
        Assert.Contains($"finished {steps}/{steps} steps", winner.Output);

        // the winner's files, whole: one parsable line per step, every checkpoint verifies, its loss is the run's
        string[] lines = File.ReadAllLines(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(steps, lines.Length);
        SortedDictionary<long, double> losses = RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(Enumerable.Range(1, steps).Select(i => (long)i), losses.Keys);
        var store = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints"));
        Assert.Equal([12L, 16L], store.List().Select(c => c.Step)); // keep_last 2
        foreach (CheckpointInfo checkpoint in store.List())
            store.Verify(checkpoint);
        Assert.Equal(steps, store.List()[^1].ReadTrainerState().Step);
    }

    private static void WaitFor(Func<bool> condition, FinetuneProcess process)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (process.HasExited)
                throw new InvalidOperationException($"finetune exited early:\n{process.Output}");
            if (clock.Elapsed > s_timeout)
                throw new TimeoutException($"not ready within {s_timeout}:\n{process.Output}");
            Thread.Sleep(20);
        }
    }
}
