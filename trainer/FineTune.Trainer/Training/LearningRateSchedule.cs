namespace FineTune.Trainer.Training;

/// <summary>The shape of the learning-rate curve after warmup.</summary>
public enum ScheduleKind { Cosine, Linear, Constant }

/// <summary>
/// Learning rate as a pure function of the optimizer step (0-based: the step about to be taken), so a resumed run
/// needs only the step count to continue the curve exactly.
/// Warmup is linear from 0 to the peak over <see cref="WarmupSteps"/> (step/warmup, as torchtune and HF do);
/// after it the multiplier decays to <see cref="MinLrRatio"/> over the remaining steps.
/// reference: torchtune training/lr_schedulers.py get_cosine_schedule_with_warmup (num_cycles 0.5);
/// transformers get_linear_schedule_with_warmup.
/// </summary>
public sealed class LearningRateSchedule
{
    public LearningRateSchedule(ScheduleKind kind, double peakLr, long warmupSteps, long totalSteps, double minLrRatio = 0.0)
    {
        if (peakLr < 0) throw new ArgumentOutOfRangeException(nameof(peakLr), "learning rate must be >= 0");
        if (warmupSteps < 0) throw new ArgumentOutOfRangeException(nameof(warmupSteps), "warmup steps must be >= 0");
        if (totalSteps < 1) throw new ArgumentOutOfRangeException(nameof(totalSteps), "total steps must be >= 1");
        if (minLrRatio is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(minLrRatio), "min_lr_ratio must be in [0, 1]");
        Kind = kind;
        PeakLr = peakLr;
        WarmupSteps = warmupSteps;
        TotalSteps = totalSteps;
        MinLrRatio = minLrRatio;
    }

    public ScheduleKind Kind { get; }
    public double PeakLr { get; }
    public long WarmupSteps { get; }
    public long TotalSteps { get; }
    public double MinLrRatio { get; }

    /// <summary>
    /// Set by <see cref="ReplannedFrom"/>: from this step on the decay runs from <see cref="DecayStartLr"/> down to
    /// the final lr at <see cref="TotalSteps"/> (a run extended on resume continues its curve without a jump).
    /// </summary>
    public long? DecayStartStep { get; private init; }

    public double DecayStartLr { get; private init; }

    /// <summary>
    /// This schedule continued from <paramref name="step"/> to a new total: the lr at that step is kept and the
    /// same kind of decay runs from it to PeakLr x MinLrRatio at <paramref name="newTotalSteps"/>.
    /// </summary>
    public LearningRateSchedule ReplannedFrom(long step, long newTotalSteps) =>
        new(Kind, PeakLr, WarmupSteps, newTotalSteps, MinLrRatio) { DecayStartStep = step, DecayStartLr = At(step) };

    /// <summary>As <see cref="ReplannedFrom"/>, from saved values (a checkpoint's scheduler state).</summary>
    public LearningRateSchedule WithDecayStart(long step, double lr) =>
        new(Kind, PeakLr, WarmupSteps, TotalSteps, MinLrRatio) { DecayStartStep = step, DecayStartLr = lr };

    /// <summary>Learning rate for optimizer step <paramref name="step"/> (0-based).</summary>
    public double At(long step)
    {
        if (DecayStartStep is long start && step >= start)
        {
            if (Kind == ScheduleKind.Constant)
                return DecayStartLr;
            double finalLr = PeakLr * MinLrRatio;
            double remaining = Math.Clamp((double)(step - start) / Math.Max(1, TotalSteps - start), 0.0, 1.0);
            double kept = Kind == ScheduleKind.Cosine ? 0.5 * (1.0 + Math.Cos(Math.PI * remaining)) : 1.0 - remaining;
            return DecayStartLr * kept + finalLr * (1.0 - kept); // exactly DecayStartLr at the start step (kept = 1)
        }
        if (step < WarmupSteps)
            return PeakLr * step / WarmupSteps;
        if (Kind == ScheduleKind.Constant)
            return PeakLr;
        long decaySteps = Math.Max(1, TotalSteps - WarmupSteps);
        double progress = Math.Clamp((double)(step - WarmupSteps) / decaySteps, 0.0, 1.0);
        double multiplier = Kind == ScheduleKind.Cosine
            ? 0.5 * (1.0 + Math.Cos(Math.PI * progress))
            : 1.0 - progress;
        return PeakLr * (MinLrRatio + (1.0 - MinLrRatio) * multiplier);
    }
}
