using System.Diagnostics;
using FineTune.Trainer.Checkpoints;
using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// Issue 21: a full disk gave "internal error ... No space left on device" (exit 1). On a real size-limited
/// filesystem: a run whose checkpoints cannot fit is refused before it starts, with the estimate; a disk that
/// fills during the run stops it with exit 2 and one sentence, and the last complete checkpoint stays valid.
/// </summary>
public sealed class DiskFullTests
{
    [MountFact]
    public void ARunWhoseCheckpointsCannotFitIsRefusedUpFront()
    {
        using var tiny = new TinyRunRecipe();
        using var disk = new SizeLimitedFolder(1);
        string output = Path.Combine(disk.Path, "run");
        foreach (string command in new[] { "validate", "plan", "run" })
        {
            var (code, _, error) = CliRunner.Run(command, tiny.RecipePath, $"output_dir={output}", $"offload.nvme_dir={tiny.OutputDirectory}", "training.max_steps=4");
            Assert.True(code == 2, $"{command}: {error}");
            Assert.Single(error.Trim().Split('\n'));
            Assert.Contains($"checkpoint.dir {output}/checkpoints has", error);
            Assert.Contains("GiB free but this run needs about", error);
            Assert.Contains("checkpoint(s) at the peak of the 2 it writes with checkpoint.keep_last 2", error);
            Assert.False(Directory.Exists(output)); // nothing left behind
        }
    }

    [MountFact]
    public void ADiskThatFillsDuringTheRunStopsItWithOneSentenceAndTheLastCheckpointIntact()
    {
        using var tiny = new TinyRunRecipe();
        using var disk = new SizeLimitedFolder(8);
        string output = Path.Combine(disk.Path, "run");
        var store = new CheckpointStore(Path.Combine(output, "checkpoints"));
        using var run = new FinetuneProcess("run", tiny.RecipePath, $"output_dir={output}", $"offload.nvme_dir={tiny.OutputDirectory}",
            "training.max_steps=100000", "checkpoint.every_steps=2", "logging.log_every_steps=1");
        var clock = Stopwatch.StartNew();
        while (store.List().Count == 0)
        {
            Assert.False(run.HasExited, run.Output);
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(90), run.Output);
            Thread.Sleep(20);
        }
        disk.Fill();
        int code = run.WaitForExit(TimeSpan.FromSeconds(90));

        Assert.True(code == 2, $"exit {code}\n{run.Output}");
        Assert.DoesNotContain("internal error", run.Output);
        string[] errors = run.Output.Split('\n').Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();
        string error = Assert.Single(errors);
        Assert.True(error.Contains("No space left on the disk", StringComparison.Ordinal) || error.Contains("less than the", StringComparison.Ordinal), error);
        File.Delete(Path.Combine(disk.Path, "filler"));
        CheckpointInfo last = store.List()[^1];
        store.Verify(last); // complete and undamaged
    }
}
