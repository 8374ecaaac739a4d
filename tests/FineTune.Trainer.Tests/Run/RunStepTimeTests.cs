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
        // drive-bound both ways: the drive's time, and a share of the CPU's that vanishes as it gets smaller
        double driveSeconds = overlapped.Forward.IoSeconds + overlapped.Backward.IoSeconds;
        Assert.InRange(overlapped.StepSeconds, driveSeconds, driveSeconds + RunPlan.ContentionShare * (overlapped.Forward.CpuSeconds + overlapped.Backward.CpuSeconds));
        // deferred: the update's bytes (states and weight write-back) move under the forward instead
        NvmeTraffic d = deferred.Traffic;
        double update = d.StateReadBytes + d.StateWriteBytes + d.WeightWriteBytes;
        Assert.Equal((d.WeightReadBytes / 2 + d.ActivationWriteBytes + update) / 1e8, deferred.Forward.IoSeconds, 9);
        // two phases that cannot lend each other time are never faster than the one-phase overlap of all the work
        foreach (RunPlan p in new[] { overlapped, deferred })
            Assert.True(p.StepSeconds >= Math.Max(p.CpuSeconds, p.IoSeconds) - 1e-9);
    }

    [Fact]
    public void APhaseWhoseCpuAndDriveAreEquallyBusyTakesAFifthMoreThanEither()
    {
        Assert.Equal(12.0, RunPlan.PhaseSeconds(10, 10), 9);
        Assert.Equal(10 + 0.2 * 5 * 0.25, RunPlan.PhaseSeconds(5, 10), 9); // the shorter at half: a twentieth of it
        Assert.Equal(RunPlan.PhaseSeconds(5, 10), RunPlan.PhaseSeconds(10, 5), 9);
        Assert.Equal(7.0, RunPlan.PhaseSeconds(0, 7), 9);
        Assert.Equal(0.0, RunPlan.PhaseSeconds(0, 0), 9);
    }

    // slow products, a fast drive: forward's compute can hide part of the update
    private static readonly MachineRates s_computeBound = new(GemmFlopsPerSecond: 1e9, AdamParamsPerSecond: 1e9, NvmeBytesPerSecond: 1e8, IoCpuSecondsPerByte: 0, Measured: true);

    [Fact]
    public void ThePlanMovesTheTopOfAnOverlappedUpdateUnderForwardAsFarAsTheBudgetAllows()
    {
        using var tiny = new TinyRunRecipe();
        string[] overlapped = ["training.clip_grad_norm=null", "training.gradient_accumulation_steps=1", "offload.sub_group_params=2048"];
        RunPlan split = RunPlan.Create(tiny.Load(overlapped), 0, rates: s_computeBound);
        long at = split.Memory.SplitElement ?? throw new Xunit.Sdk.XunitException("no split");
        Assert.Equal(split.ParameterCount - at, split.UnderForwardElementCount, tolerance: split.Memory.Layout.SubGroupElementCount);
        Assert.Equal(split.ParameterCount / RunPlan.UnderForwardShareDenominator, split.UnderForwardElementCount);
        Assert.True(split.Memory.HeldGradientByteCount > 0);
        // forward's drive time now carries the top part's update beside the weight reads and saved inputs
        NvmeTraffic t = split.Traffic;
        Assert.True(split.Forward.IoSeconds > (t.WeightReadBytes / 2 + t.ActivationWriteBytes) / 1e8 * 1.01);
        // with clipping the update already runs under the next forward, whole: nothing to split
        RunPlan clipped = RunPlan.Create(tiny.Load("training.clip_grad_norm=1.0", "training.gradient_accumulation_steps=1"), 0, rates: s_computeBound);
        Assert.Null(clipped.Memory.SplitElement);
        Assert.Equal(0, clipped.UnderForwardElementCount);
        // half the room the held gradients took: the split still fits host_gb (a smaller top part, or none, if it must)
        double gb = (split.HostPeakByteCount(0) - split.Memory.HeldGradientByteCount / 2) / FineTune.Trainer.Recipes.OffloadSection.BytesPerGb;
        RunPlan tight = RunPlan.Create(tiny.Load([.. overlapped, FormattableString.Invariant($"offload.host_gb={gb:0.000000}")]), 0, rates: s_computeBound);
        Assert.True(tight.UnderForwardElementCount <= split.UnderForwardElementCount, $"{tight.UnderForwardElementCount} vs {split.UnderForwardElementCount}");
        Assert.True(tight.HostPeakByteCount(0) <= gb * FineTune.Trainer.Recipes.OffloadSection.BytesPerGb);
        Assert.True(split.WorkingByteCount >= split.Memory.HeldGradientByteCount); // the held gradients are in the working set
    }

    [Fact]
    public void AMeasuredLayerSetsTheLayersComputeAndTheRecomputeIsOneForwardOfEachRecomputedLayer()
    {
        using var tiny = new TinyRunRecipe();
        MachineRates layered = s_computeBound with { Layer = new LayerRate(ForwardSeconds: 0.010, BackwardSeconds: 0.030) };
        string[] one = ["training.gradient_accumulation_steps=1", "offload.host_gb=null", "offload.params=host"];
        RunPlan recomputing = RunPlan.Create(tiny.Load([.. one, "training.recompute=always"]), 0, rates: layered);
        RunPlan keeping = RunPlan.Create(tiny.Load([.. one, "training.recompute=never"]), 0, rates: layered);
        int layers = recomputing.Config.LayerCount;
        // the head's products from the product rate, the same in both
        double head = recomputing.ComputeSeconds - layers * (0.010 + 0.030);
        Assert.True(head > 0);
        Assert.Equal(layers * (0.010 + 0.020) + head, keeping.ComputeSeconds, 9);
        Assert.Equal(layers * 0.010, recomputing.RecomputeSeconds, 9);
        Assert.Equal(0, keeping.RecomputeSeconds);
        // the layer's forward sits in the forward phase, its backward in the backward phase
        Assert.True(recomputing.Forward.CpuSeconds >= layers * 0.010 && recomputing.Backward.CpuSeconds >= layers * 0.030);
    }

    [Fact]
    public void ALayerTimedOnThisMachineTakesLongerBackwardThanForward()
    {
        var config = new FineTune.Trainer.Models.LlamaConfig
        {
            ModelType = "llama", VocabSize = 4096, HiddenSize = 64, IntermediateSize = 128, LayerCount = 12, HeadCount = 4, KvHeadCount = 2, HeadDim = 16,
        };
        LayerRate rate = LayerRate.Measure(config, FineTune.Torch.DType.Float32, batch: 2, sequenceLength: 32);
        Assert.True(rate.ForwardSeconds > 0);
        Assert.True(rate.BackwardSeconds > rate.ForwardSeconds, $"{rate}"); // a forward with grad, then twice its products
        Assert.Equal(rate.BackwardSeconds - rate.ForwardSeconds, rate.KeptBackwardSeconds, 12);
    }
}
