namespace FineTune.Trainer.Training;

/// <summary>
/// Dynamic loss scaling for fp16 training: the loss is multiplied by <see cref="Scale"/> before backward so small
/// gradients survive fp16; the optimizer divides it back out in its fused pass. A step whose gradients hold a NaN or
/// an Inf is skipped and the scale backs off; after <see cref="GrowthInterval"/> clean steps in a row it grows.
/// reference: torch.cuda.amp.GradScaler (init 2^16, growth 2.0, backoff 0.5, growth_interval 2000).
/// The whole state is (Scale, CleanSteps, SkippedSteps), saved in the trainer state so resume is exact.
/// </summary>
public sealed class DynamicLossScaler
{
    public DynamicLossScaler(double initialScale = 65536.0, double growthFactor = 2.0, double backoffFactor = 0.5,
        int growthInterval = 2000)
    {
        if (initialScale <= 0) throw new ArgumentOutOfRangeException(nameof(initialScale));
        if (growthFactor <= 1) throw new ArgumentOutOfRangeException(nameof(growthFactor));
        if (backoffFactor is <= 0 or >= 1) throw new ArgumentOutOfRangeException(nameof(backoffFactor));
        if (growthInterval < 1) throw new ArgumentOutOfRangeException(nameof(growthInterval));
        Scale = initialScale;
        GrowthFactor = growthFactor;
        BackoffFactor = backoffFactor;
        GrowthInterval = growthInterval;
    }

    public double Scale { get; private set; }
    public double GrowthFactor { get; }
    public double BackoffFactor { get; }
    public int GrowthInterval { get; }

    /// <summary>Clean (non-overflowing) steps since the last change of scale.</summary>
    public int CleanSteps { get; private set; }

    /// <summary>Steps skipped because a gradient was not finite.</summary>
    public long SkippedSteps { get; private set; }

    /// <summary>Records the outcome of one optimizer step. Returns true when the step should be applied.</summary>
    public bool Update(bool gradientsFinite)
    {
        if (!gradientsFinite)
        {
            Scale *= BackoffFactor;
            CleanSteps = 0;
            SkippedSteps++;
            return false;
        }
        if (++CleanSteps >= GrowthInterval)
        {
            Scale *= GrowthFactor;
            CleanSteps = 0;
        }
        return true;
    }

    /// <summary>Restores a saved state (from a checkpoint).</summary>
    public void Restore(double scale, int cleanSteps, long skippedSteps)
    {
        if (scale <= 0 || cleanSteps < 0 || skippedSteps < 0)
            throw new ArgumentOutOfRangeException(nameof(scale), "saved loss-scaler state is invalid");
        Scale = scale;
        CleanSteps = cleanSteps;
        SkippedSteps = skippedSteps;
    }
}
