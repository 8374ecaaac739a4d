using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// The disk a run's checkpoints need, as the plan predicts it and the run then uses it: optimizer states on NVMe go
/// into a checkpoint as a hard link to the swap file (checkpoint.dir on the same disk), so only a checkpoint that
/// training goes on after takes their size again; states in host memory are copied into each checkpoint.
/// </summary>
public sealed class RunCheckpointSpaceTests
{
    [Fact]
    public void LinkedStatesTakeDiskOnlyForCheckpointsThatTrainingGoesOnAfter()
    {
        using var tiny = new TinyRunRecipe();
        RunPlan Plan(FineTune.Trainer.Recipes.Recipe recipe) => RunPlan.Create(recipe, baselineByteCount: 0);
        var recipe = tiny.Load(); // a checkpoint every 2 of 8 steps, keep_last 2, states on NVMe beside checkpoint.dir
        RunSpaceCheck.Space linked = RunSpaceCheck.Predict(recipe, Plan(recipe), existing: 0, totalSteps: 8);
        Assert.Equal((4, 3, true, 2), (linked.Written, linked.Added, linked.Linked, linked.StateCopies));
        var copied = RunSpaceCheck.Predict(tiny.Load("offload.optimizer_states=host"), Plan(tiny.Load("offload.optimizer_states=host")), 0, 8);
        Assert.Equal((4, 3, false, 3), (copied.Written, copied.Added, copied.Linked, copied.StateCopies));
        // only the final checkpoint: its states are the swap file itself, nothing more on disk than the swap and the weights
        var last = tiny.Load("checkpoint.every_steps=null", "checkpoint.every_minutes=null");
        RunSpaceCheck.Space final = RunSpaceCheck.Predict(last, Plan(last), 0, 8);
        Assert.Equal((1, 1, true, 0), (final.Written, final.Added, final.Linked, final.StateCopies));
        long Checkpoints(RunSpaceCheck.Space space) => space.NeedByteCount - space.SwapByteCount;
        Assert.True(Checkpoints(final) < Checkpoints(linked) && Checkpoints(linked) < Checkpoints(copied));
        Assert.Equal(3 * linked.WeightByteCount + 2 * linked.StateByteCount, Checkpoints(linked), tolerance: Checkpoints(linked) / 100 + (1 << 20));
        Assert.Equal(final.SwapByteCount + final.WeightByteCount, final.NeedByteCount, tolerance: 1 << 20); // the slack is at least 1 MiB
    }

    [Fact]
    public void ARunLinksItsCheckpointsAndResumesFromThemBitIdentically()
    {
        using var reference = new TinyRunRecipe();
        RunResumeTests.Execute(reference.Load("offload.optimizer_states=host"), CancellationToken.None);
        using var tiny = new TinyRunRecipe();
        var lines = new StringWriter();
        RunResult first = new TrainingRun(tiny.Load("training.max_steps=4"), new RunProgress(lines, null, 1)).Execute(CancellationToken.None);
        Assert.Equal(4, first.Step);
        string output = lines.ToString();
        Assert.Contains("step 2: checkpoint", output);
        Assert.Contains("optimizer states linked to the NVMe swap file", output);
        Assert.DoesNotContain("optimizer states copied", output);
        // step_2's states stayed those of step 2 while steps 3-4 trained: a resume from it gives the reference's losses
        var resume = tiny.Load($"resume={Path.Combine(tiny.RunDirectory, "checkpoints", "step_2")}", "training.max_steps=8");
        RunResult resumed = new TrainingRun(resume, new RunProgress(TextWriter.Null, null, 1)) { DiscardNewer = true }.Execute(CancellationToken.None);
        Assert.Equal(8, resumed.Step);
        Assert.Equal(RunMetricsLog.ReadLosses(Path.Combine(reference.RunDirectory, RunMetricsLog.FileName)),
            RunMetricsLog.ReadLosses(Path.Combine(tiny.RunDirectory, RunMetricsLog.FileName)));
    }
}
