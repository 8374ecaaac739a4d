using System.Diagnostics;

namespace FineTune.Trainer.Training.Updates;

/// <summary>
/// What the next forward waits on while an update runs under it (<see cref="DeferredUpdate"/>, <see cref="SplitUpdate"/>):
/// the update's ascending progress, which a stage's weights must have passed before they are read, and the time the
/// step's thread spent waiting for it (the optimizer on the critical path).
/// </summary>
internal sealed class ForwardGate
{
    private double _waitSeconds;

    /// <summary>The running update's progress; null when none runs under the forward.</summary>
    public UpdateProgress? Progress { get; set; }

    /// <summary>Blocks until the running update (if any) has written every weight below <paramref name="end"/>.</summary>
    public void WaitForWeights(long end)
    {
        if (Progress is not UpdateProgress progress || progress.IsDone(end))
            return;
        long start = Stopwatch.GetTimestamp();
        progress.WaitFor(end);
        _waitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
    }

    /// <summary>True when nothing below <paramref name="end"/> is still to be written (a prefetch may read it).</summary>
    public bool WeightsReady(long end) => Progress?.IsDone(end) ?? true;

    /// <summary>Waits for <paramref name="running"/> to end (counted as wait), rethrowing its failure; the gate opens either way.</summary>
    public void Settle(Task running)
    {
        long start = Stopwatch.GetTimestamp();
        try
        {
            running.GetAwaiter().GetResult();
        }
        finally
        {
            _waitSeconds += Stopwatch.GetElapsedTime(start).TotalSeconds;
            Progress = null;
        }
    }

    /// <summary>Seconds waited since the last call.</summary>
    public double TakeWaitSeconds()
    {
        double seconds = _waitSeconds;
        _waitSeconds = 0;
        return seconds;
    }
}
