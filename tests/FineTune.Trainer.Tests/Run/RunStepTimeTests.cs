using FineTune.Trainer.Planning;
using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// The plan's step time: forward, then backward, each the longer of its CPU work and its drive time. The optimizer's
/// states move in backward when the update follows it, under the next forward when it waits for the global norm.
/// </summary>
public sealed class RunStepTimeTests
{
    // slow drive, fast products: every phase is the drive's
    private static readonly MachineRates s_rates = new(GemmFlopsPerSecond: 1e12, AdamParamsPerSecond: 1e9, NvmeBytesPerSecond: 1e8, IoCpuSecondsPerByte: 1e-11, Measured: true);

    [Fact]
    public void TheStateTrafficMovesInTheBackwardPhaseUnlessTheUpdateWaitsForTheNorm()
    {
        using var tiny = new TinyRunRecipe();
        RunPlan overlapped = RunPlan.Create(tiny.Load("training.clip_grad_norm=null", "offload.params=nvme"), 0, rates: s_rates);
        RunPlan deferred = RunPlan.Create(tiny.Load("training.clip_grad_norm=1.0", "offload.params=nvme", "offload.gradients=nvme"), 0, rates: s_rates);
        NvmeTraffic t = overlapped.Traffic;
        Assert.True(t.StateReadBytes > 0 && t.WeightReadBytes > 0);
        // forward: the weights' first read and the saved inputs; backward: the rest, the states among it
        double forwardBytes = t.WeightReadBytes / 2 + t.ActivationWriteBytes;
        Assert.Equal(forwardBytes / 1e8, overlapped.Forward.IoSeconds, 9);
        Assert.Equal((t.ReadBytes + t.WriteBytes - forwardBytes) / 1e8, overlapped.Backward.IoSeconds, 9);
        Assert.Equal(overlapped.Forward.IoSeconds + overlapped.Backward.IoSeconds, overlapped.StepSeconds, 9); // drive-bound both ways
        // deferred: the update's bytes (states and weight write-back) move under the forward instead
        NvmeTraffic d = deferred.Traffic;
        double update = d.StateReadBytes + d.StateWriteBytes + d.WeightWriteBytes;
        Assert.Equal((d.WeightReadBytes / 2 + d.ActivationWriteBytes + update) / 1e8, deferred.Forward.IoSeconds, 9);
        // two phases that cannot lend each other time are never faster than the one-phase overlap of all the work
        foreach (RunPlan p in new[] { overlapped, deferred })
            Assert.True(p.StepSeconds >= Math.Max(p.CpuSeconds, p.IoSeconds) - 1e-9);
    }
}
