using System.Globalization;
using FineTune.Trainer.Plots;

namespace FineTune.Trainer.Runs;

/// <summary>The lines printed at the end of a run: loss drop and its curve as a sparkline, speed, peak host memory against the budget, task accuracy, where the files are (the loss plot among them).</summary>
public static class RunSummary
{
    public static IReadOnlyList<string> Lines(RunResult r)
    {
        var lines = new List<string>();
        string head = r.Interrupted ? $"interrupted at step {r.Step}/{r.TotalSteps}" : $"finished {r.Step}/{r.TotalSteps} steps";
        lines.Add(Invariant($"{head} ({(r.StartStep > 0 ? $"resumed from step {r.StartStep}" : "fresh start")})"));
        if (r.FirstLoss is double first && r.LastLoss is double last)
            lines.Add(Invariant($"loss: {first:0.0000} (step 1) -> {last:0.0000} (step {r.Step}), {Math.Abs(first - last) / first * 100:0.0}% {(last <= first ? "lower" : "higher")}"));
        if (r.LossCurve.Count > 1)
            lines.Add($"train loss {Sparkline.Render(r.LossCurve)} ({r.LossCurve.Count} steps)");
        if (r.EvalLossCurve.Count > 1)
            lines.Add($"eval loss  {Sparkline.Render(r.EvalLossCurve)} ({r.EvalLossCurve.Count} evaluations)");
        lines.Add(Invariant($"speed: {r.TokensPerSecond:0} trained tokens/s ({r.PositionsPerSecond:0} tokens/s through the model, prompts and padding included)"));
        string budget = r.HostBudgetByteCount is long b
            ? Invariant($" of the {Gib(b)} GiB host budget ({100.0 * r.PeakResidentByteCount / b:0}%, {(r.PeakResidentByteCount <= b ? "within" : "OVER")} budget)")
            : " (no host budget set)";
        if (r.Compute is not null)
            lines.Add($"compute: {r.Compute}");
        lines.Add(Invariant($"peak host memory (VmHWM): {Gib(r.PeakResidentByteCount)} GiB{budget}; planned {Gib(r.PredictedHostPeakByteCount)} GiB; engine pools reserve {Mib(r.PoolReservedByteCount)} MiB"));
        if (r.GradientMemory is var (peak, bound))
            lines.Add(Invariant($"gradients alive at once (consumed, with the weights they carry): at most {Gib(peak)} GiB; planned bound {Gib(bound)} GiB"));
        foreach (string line in StepLines(r))
            lines.Add(line);
        if (r.RankPeakResidentByteCounts.Count > 1)
            lines.Add($"ranks: {r.RankPeakResidentByteCounts.Count}, peak host memory (VmHWM) per rank {string.Join(", ", r.RankPeakResidentByteCounts.Select((p, i) => $"{i}: {Gib(p)}"))} GiB");
        if (r.AccuracyAfter is double after)
            lines.Add(Invariant($"task accuracy (greedy, {RunSetup.AccuracyRecordCount} held-out records): {(r.AccuracyBefore is double before ? $"{before:P0} -> " : "")}{after:P0}"));
        if (r.EvalLoss is double eval)
            lines.Add(Invariant($"eval/loss: {eval:0.0000}"));
        if (r.TensorBoardFile is not null)
            lines.Add($"tensorboard: {Path.GetDirectoryName(r.TensorBoardFile)} (tensorboard --logdir {Path.GetDirectoryName(r.TensorBoardFile)})");
        lines.Add($"losses: {r.MetricsFile}");
        if (r.PlotFile is not null || r.PlotError is not null)
            lines.Add(r.PlotFile is not null ? $"plot: {r.PlotFile}" : $"plot: not drawn ({r.PlotError})");
        lines.Add(r.LastCheckpoint is null ? $"checkpoints: none in {r.CheckpointDirectory}" : $"checkpoint: {r.LastCheckpoint}");
        if (r.Interrupted)
            lines.Add($"continue with: finetune resume {Path.GetDirectoryName(r.MetricsFile)}");
        return lines;
    }

    /// <summary>Mean step time split, NVMe bytes per parameter per step by kind, and the step against the I/O floor and the plan.</summary>
    private static IEnumerable<string> StepLines(RunResult r)
    {
        if (r.Steps is not { IsEmpty: false } steps)
            yield break;
        string which = steps.Count == r.Step - r.StartStep ? $"{steps.Count} step(s)" : $"{steps.Count} step(s) after the first";
        string planned = r.PlannedStepSeconds is double p ? Invariant($"; plan {p:0.0} s ({(steps.Seconds / p - 1) * 100:+0;-0}%)") : "";
        yield return Invariant($"step time: {steps.Seconds:0.00} s, mean of {which}: compute {steps.ComputeSeconds:0.00} + I/O waits {steps.IoWaitSeconds:0.00} + optimizer {steps.OptimizerSeconds:0.00}{(steps.OptimizerWaitSeconds > 0 ? Invariant($" + backward waiting for the optimizer {steps.OptimizerWaitSeconds:0.00}") : "")}{planned}");
        FineTune.Trainer.Planning.NvmeTraffic t = steps.Traffic;
        if (t.ReadBytes + t.WriteBytes == 0 || r.ParameterCount == 0)
            yield break;
        double n = r.ParameterCount;
        string plannedBytes = r.PlannedTraffic is { } pt ? Invariant($"; plan {(pt.ReadBytes + pt.WriteBytes) / n:0.0}") : "";
        yield return Invariant($"nvme per step: read {t.ReadBytes / 1e9:0.00} GB, written {t.WriteBytes / 1e9:0.00} GB = {(t.ReadBytes + t.WriteBytes) / n:0.0} B/param (states {(t.StateReadBytes + t.StateWriteBytes) / n:0.0}, weights {(t.WeightReadBytes + t.WeightWriteBytes) / n:0.0}, activations {(t.ActivationReadBytes + t.ActivationWriteBytes) / n:0.0}, gradients {(t.GradientReadBytes + t.GradientWriteBytes) / n:0.0}){plannedBytes}");
        if (r.IoFloor is { } floor)
            yield return Invariant($"I/O floor: {floor.BytesPerSecond / 1e9:0.00} GB/s for reads and writes at once (measured in this run: {floor.SampleByteCount / 1e9:0.0} GB at the step's mix, {floor.Engine}), so a step's {(t.ReadBytes + t.WriteBytes) / 1e9:0.0} GB take at least {floor.SecondsFor(t):0.0} s; the step took {steps.Seconds / floor.SecondsFor(t):0.00}x that");
    }

    private static string Gib(long byteCount) => (byteCount / (double)(1L << 30)).ToString("0.000", CultureInfo.InvariantCulture);

    private static string Mib(long byteCount) => (byteCount / (double)(1L << 20)).ToString("0.0", CultureInfo.InvariantCulture);

    private static string Invariant(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
