using System.Globalization;
using System.Text.Json.Nodes;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The learning-rate schedule of a run and the two rules around it, printed at start (docs/running.md):
/// - Warmup not shorter than the run (max_steps or the epoch-derived total): the warmup is shortened to the run's
///   length less one, so the peak lr is used at the last step instead of never. The same rule for both ways of
///   giving the length; no error.
/// - Resume with a different total (training.max_steps raised or lowered): the schedule is re-planned from the
///   resume point. The lr at the checkpoint's step is kept and the decay runs from it to the final lr at the
///   new total, so the curve bends but never jumps. In warmup, with the warmup unchanged, the ramp continues.
/// The schedule's total, warmup and decay start are saved in the checkpoint's scheduler state, so a later
/// resume continues exactly the curve the run was on (bit-exact resume holds after a re-plan too).
/// </summary>
public static class RunSchedule
{
    private const string TotalKey = "total_steps";
    private const string WarmupKey = "warmup_steps";
    private const string DecayStepKey = "decay_start_step";
    private const string DecayLrKey = "decay_start_lr";

    /// <summary>The schedule for <paramref name="totalSteps"/> (resuming from <paramref name="state"/> when given) and the line that says it.</summary>
    public static (LearningRateSchedule Schedule, string Description) Plan(Recipe recipe, long totalSteps, TrainerState? state)
    {
        LearningRateSchedule fresh = Create(recipe, totalSteps, recipe.Schedule.WarmupSteps);
        string capped = recipe.Schedule.WarmupSteps >= totalSteps && recipe.Schedule.WarmupSteps > 0
            ? F($" (schedule.warmup_steps {recipe.Schedule.WarmupSteps} is not shorter than this run's {totalSteps} steps, so the warmup is shortened to {totalSteps - 1} and the peak lr comes at the last step)")
            : "";
        if (state is null)
            return (fresh, Describe(fresh) + capped);

        long step = state.Step;
        JsonObject saved = state.SchedulerState;
        long oldTotal = saved[TotalKey]?.GetValue<long>() ?? totalSteps;
        LearningRateSchedule old = Create(recipe, oldTotal, saved[WarmupKey]?.GetValue<long>() ?? recipe.Schedule.WarmupSteps);
        if (saved[DecayStepKey]?.GetValue<long>() is long decayStep)
            old = old.WithDecayStart(decayStep, saved[DecayLrKey]!.GetValue<double>());
        if (totalSteps < step)
            throw new UserErrorException($"training.max_steps {totalSteps} is below the checkpoint's step {step}; raise it to continue the run, or resume from an earlier checkpoint.");
        if (oldTotal == totalSteps)
            return (old, $"{Describe(old)} (as before the resume)");
        if (step == 0 || (step < old.WarmupSteps && old.DecayStartStep is null && fresh.WarmupSteps == old.WarmupSteps))
            return (fresh, F($"{Describe(fresh)}{capped}; re-planned for {totalSteps} steps (was {oldTotal}) with the warmup unchanged"));
        LearningRateSchedule replanned = old.ReplannedFrom(step, totalSteps);
        string floor = replanned.DecayStartLr == 0 ? "; the run had decayed to lr 0 (schedule.min_lr_ratio 0), so its extra steps do not change the weights: raise schedule.min_lr_ratio, or start a new run from this checkpoint" : "";
        return (replanned, F($"lr schedule re-planned from the resume point: the run now has {totalSteps} steps (was {oldTotal}), so the lr continues from {replanned.DecayStartLr:0.###e+0} at step {step} and {(replanned.Kind == ScheduleKind.Constant ? "stays there (constant)" : F($"decays ({Name(replanned.Kind)}) to {replanned.PeakLr * replanned.MinLrRatio:0.###e+0} at step {totalSteps}"))}, without a jump{floor}"));
    }

    /// <summary>Records what <see cref="Plan"/> needs to continue <paramref name="schedule"/> after a resume.</summary>
    public static void Save(JsonObject schedulerState, LearningRateSchedule? schedule)
    {
        if (schedule is null)
            return;
        schedulerState[TotalKey] = schedule.TotalSteps;
        schedulerState[WarmupKey] = schedule.WarmupSteps;
        if (schedule.DecayStartStep is long step)
        {
            schedulerState[DecayStepKey] = step;
            schedulerState[DecayLrKey] = schedule.DecayStartLr;
        }
    }

    private static LearningRateSchedule Create(Recipe r, long totalSteps, long warmupSteps) => new(
        r.Schedule.Type switch { ScheduleType.Linear => ScheduleKind.Linear, ScheduleType.Constant => ScheduleKind.Constant, _ => ScheduleKind.Cosine },
        r.Optimizer.Lr, Math.Min(warmupSteps, totalSteps - 1), totalSteps, r.Schedule.MinLrRatio);

    private static string Describe(LearningRateSchedule s)
    {
        string warmup = s.WarmupSteps > 0 ? F($"warmup over {s.WarmupSteps} steps to {s.PeakLr:0.###e+0}, then ") : F($"peak {s.PeakLr:0.###e+0}, ");
        string decay = s.Kind == ScheduleKind.Constant ? "constant" : F($"{Name(s.Kind)} decay to {s.PeakLr * s.MinLrRatio:0.###e+0} at step {s.TotalSteps}");
        return $"lr schedule: {warmup}{decay}";
    }

    private static string Name(ScheduleKind kind) => kind.ToString().ToLowerInvariant();

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
