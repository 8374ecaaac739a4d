using System.Text.Json.Nodes;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Training;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// Issue 22's schedule rules: a warmup not shorter than the run is shortened so the peak lr is used (the same rule
/// for max_steps and epochs, no error); a resume with a changed total re-plans from the resume point without a
/// jump (4.3x before); the re-planned curve is saved and a later resume continues it exactly.
/// </summary>
public sealed class RunScheduleTests
{
    private const double Peak = 3e-3;

    private static Recipe Load(params string[] overrides) => Recipe.Parse("""
        model:
          config: {vocab_size: 260, hidden_size: 32, intermediate_size: 64, num_hidden_layers: 2, num_attention_heads: 4, max_position_embeddings: 64}
        tokenizer: {kind: byte}
        dataset: {format: synthetic, seq_len: 32}
        training: {device: cpu}
        optimizer: {lr: 3.0e-3}
        schedule: {type: cosine, warmup_steps: 10, min_lr_ratio: 0.1}
        output_dir: /tmp/finetune-schedule-test
        """, "schedule.yaml", overrides);

    private static TrainerState StateAt(long step, LearningRateSchedule schedule)
    {
        var scheduler = new JsonObject { ["step"] = step };
        RunSchedule.Save(scheduler, schedule);
        return new TrainerState { Step = step, SchedulerState = scheduler };
    }

    [Fact]
    public void AWarmupLongerThanTheRunIsShortenedSoThePeakIsUsed()
    {
        var (schedule, line) = RunSchedule.Plan(Load("schedule.warmup_steps=20"), totalSteps: 5, state: null);
        Assert.Equal(4, schedule.WarmupSteps);
        Assert.Equal(Peak, schedule.At(4));
        Assert.Contains("schedule.warmup_steps 20 is not shorter than this run's 5 steps, so the warmup is shortened to 4", line);
    }

    [Fact]
    public void ExtendingTheRunOnResumeBendsTheCurveWithoutAJump()
    {
        Recipe recipe = Load();
        var (original, _) = RunSchedule.Plan(recipe, totalSteps: 100, state: null);
        double atResume = original.At(50);
        // what rebuilding the schedule for 300 steps gave before: a jump at the resume step
        Assert.True(new LearningRateSchedule(ScheduleKind.Cosine, Peak, 10, 300, 0.1).At(50) / atResume > 1.5);

        var (extended, line) = RunSchedule.Plan(recipe, totalSteps: 300, StateAt(50, original));
        Assert.Equal(atResume, extended.At(50));
        Assert.True(extended.At(51) < atResume && extended.At(51) > 0.99 * atResume);
        Assert.Equal(Peak * 0.1, extended.At(300), 15);
        Assert.Contains("lr schedule re-planned from the resume point: the run now has 300 steps (was 100)", line);

        // saved and resumed again later (same total): the same curve, bit for bit
        var (again, againLine) = RunSchedule.Plan(recipe, totalSteps: 300, StateAt(120, extended));
        foreach (long step in new long[] { 120, 200, 299 })
            Assert.Equal(extended.At(step), again.At(step));
        Assert.Contains("(as before the resume)", againLine);
    }

    [Fact]
    public void AnUnchangedTotalKeepsTheScheduleAndALowerOneBelowTheStepIsRefused()
    {
        Recipe recipe = Load();
        var (original, _) = RunSchedule.Plan(recipe, totalSteps: 100, state: null);
        var (same, _) = RunSchedule.Plan(recipe, totalSteps: 100, StateAt(40, original));
        Assert.Equal(original.At(40), same.At(40));
        Assert.Equal(original.At(90), same.At(90));
        Assert.Contains("training.max_steps 30 is below the checkpoint's step 40",
            Assert.Throws<UserErrorException>(() => RunSchedule.Plan(recipe, totalSteps: 30, StateAt(40, original))).Message);
    }
}
