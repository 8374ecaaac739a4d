using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Runs;
using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>
/// SIGTERM and SIGINT (Ctrl-C) stop a run cleanly: the current step finishes, a checkpoint of it is
/// saved, the process exits with 130, and `finetune resume RUN_DIR` finishes the run with the uninterrupted losses.
/// </summary>
public sealed class SignalTests
{
    [Theory]
    [InlineData("TERM", "SIGTERM")]
    [InlineData("INT", "Ctrl-C")]
    public void SignalSavesACheckpointExitsWith130AndResumeFinishesTheRun(string signal, string announced)
    {
        string[] overrides = ["training.max_steps=40", "checkpoint.every_steps=100"];
        using var reference = new TinyRunRecipe();
        var (code, output) = FinetuneProcess.Run(TimeSpan.FromSeconds(90), ["run", reference.RecipePath, .. overrides]);
        Assert.True(code == 0, output);
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(Path.Combine(reference.RunDirectory, RunMetricsLog.FileName));

        using var tiny = new TinyRunRecipe();
        int stoppedCode;
        string stoppedOutput;
        using (var run = new FinetuneProcess(["run", tiny.RecipePath, .. overrides]))
        {
            KillResumeTests.WaitForFirstStep(run, Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
            run.Signal(signal);
            stoppedCode = run.WaitForExit(TimeSpan.FromSeconds(60));
            stoppedOutput = run.Output;
        }
        if (signal == "INT" && SigIntIgnored())
        {
            // launched in the background by a non-interactive shell (nohup, `cmd &`): SIGINT is ignored by inheritance,
            // as Unix intends for background jobs, and the run must go on undisturbed
            Assert.True(stoppedCode == 0, stoppedOutput);
            Assert.Contains("finished 40/40 steps", stoppedOutput);
            return;
        }
        Assert.True(stoppedCode == 130, stoppedOutput);
        Assert.Contains($"{announced}: saving a checkpoint", stoppedOutput);
        CheckpointInfo saved = new CheckpointStore(Path.Combine(tiny.RunDirectory, "checkpoints")).List().Single();
        Assert.InRange(saved.Step, 1, 39); // not a checkpoint of the schedule (every 100 steps) or of the end
        Assert.Contains($"interrupted at step {saved.Step}/40", stoppedOutput);

        var (resumedCode, resumedOutput) = FinetuneProcess.Run(TimeSpan.FromSeconds(90), ["resume", tiny.RunDirectory]);
        Assert.True(resumedCode == 0, resumedOutput);
        Assert.Contains($"resuming from {saved.DirectoryPath} (step {saved.Step})", resumedOutput);
        SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(expected.Keys, actual.Keys);
        foreach (var (step, loss) in expected)
            Assert.True(BitConverter.DoubleToInt64Bits(loss) == BitConverter.DoubleToInt64Bits(actual[step]), $"step {step}: {actual[step]:R} vs {loss:R}");
    }

    /// <summary>Issue 22: a second Ctrl-C aborted silently; it now says that no checkpoint of this step is written and which one is left.</summary>
    [SigIntFact]
    public void ASecondCtrlCSaysItAbortsWithoutACheckpoint()
    {
        using var tiny = new TinyRunRecipe();
        // a wider model, so a step and the checkpoint after the first Ctrl-C last long enough for the second to land
        using var run = new FinetuneProcess(["run", tiny.RecipePath, "training.max_steps=100000", "checkpoint.every_steps=100000",
            "model.config.hidden_size=256", "model.config.intermediate_size=1024", "model.config.num_hidden_layers=4"]);
        KillResumeTests.WaitForFirstStep(run, Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName));
        run.Signal("INT");
        // two signals sent back to back can merge into one pending signal: wait until the first was handled
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!run.Output.Contains("Ctrl-C: saving a checkpoint", StringComparison.Ordinal) && clock.Elapsed < TimeSpan.FromSeconds(30))
            Thread.Sleep(5);
        run.Signal("INT");
        int code = run.WaitForExit(TimeSpan.FromSeconds(60));
        Assert.NotEqual(0, code);
        Assert.Contains("Ctrl-C: saving a checkpoint at the end of this step", run.Output);
        Assert.Contains($"Ctrl-C again: aborting now without a checkpoint of this step; the last checkpoint in {tiny.RunDirectory}/checkpoints stays usable (finetune resume {tiny.RunDirectory}).", run.Output);
    }

    /// <summary>A fact that sends SIGINT: skipped, with the reason, where this process ignores SIGINT (then so does the child).</summary>
    private sealed class SigIntFactAttribute : FactAttribute
    {
        public SigIntFactAttribute()
        {
            if (SigIntIgnored())
                Skip = "this test process was started with SIGINT ignored (a background job of a non-interactive shell), so the child cannot receive Ctrl-C";
        }
    }

    /// <summary>True when this process (and so the child it starts) ignores SIGINT: bit 1 of SigIgn in /proc/self/status.</summary>
    private static bool SigIntIgnored()
    {
        string? line = File.ReadLines("/proc/self/status").FirstOrDefault(l => l.StartsWith("SigIgn:", StringComparison.Ordinal));
        return line is not null && (Convert.ToUInt64(line["SigIgn:".Length..].Trim(), 16) & 0x2) != 0;
    }
}
