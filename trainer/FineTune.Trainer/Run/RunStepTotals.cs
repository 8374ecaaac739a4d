using FineTune.Trainer.Planning;
using FineTune.Trainer.Training;

namespace FineTune.Trainer.Runs;

/// <summary>
/// A run's steps added up, for the summary and docs/scaling.md: mean step time split into compute, I/O waits and the
/// optimizer's own time, and mean NVMe bytes per step by kind. The first step of a session is left out once there
/// are others (it carries one-time costs: the first reads into empty slots, kernel selection).
/// </summary>
public sealed class RunStepTotals
{
    private readonly List<StepMetrics> _steps = [];

    public void Add(StepMetrics metrics) => _steps.Add(metrics);

    private IReadOnlyList<StepMetrics> Counted => _steps.Count > 1 ? _steps.Skip(1).ToList() : _steps;

    /// <summary>Steps the means are over.</summary>
    public int Count => Counted.Count;

    public bool IsEmpty => _steps.Count == 0;

    public double Seconds => Mean(m => m.Seconds);

    public double ComputeSeconds => Mean(m => m.ComputeSeconds);

    public double IoWaitSeconds => Mean(m => m.ReadWaitSeconds + m.WriteWaitSeconds);

    public double OptimizerSeconds => Mean(m => m.OptimizerSeconds);

    /// <summary>Mean seconds backward waited for the overlapped optimizer (its state I/O behind backward).</summary>
    public double OptimizerWaitSeconds => Mean(m => m.OptimizerWaitSeconds);

    /// <summary>Mean NVMe bytes per step by kind.</summary>
    public NvmeTraffic Traffic => new(
        (long)Mean(m => m.Traffic.StateReadBytes), (long)Mean(m => m.Traffic.StateWriteBytes),
        (long)Mean(m => m.Traffic.WeightReadBytes), (long)Mean(m => m.Traffic.WeightWriteBytes),
        (long)Mean(m => m.Traffic.ActivationReadBytes), (long)Mean(m => m.Traffic.ActivationWriteBytes),
        (long)Mean(m => m.Traffic.GradientReadBytes), (long)Mean(m => m.Traffic.GradientWriteBytes));

    private double Mean(Func<StepMetrics, double> value) => Counted.Count == 0 ? 0 : Counted.Average(value);
}
