using System.Globalization;
using FineTune.Trainer.Runs;
using Xunit;
using static FineTune.Trainer.Tests.Runs.RunResumeTests;

namespace FineTune.Trainer.Tests.Runs;

/// <summary>
/// offload.params: nvme through the whole product path (recipe, plan, run, checkpoint export, resume): the weights
/// stream from NVMe, the arithmetic is unchanged, so losses and exported checkpoints equal the resident run's bit for
/// bit; and the planner moves the weights to NVMe on its own when nothing else makes the host budget fit.
/// </summary>
public sealed class RunParameterOffloadTests
{
    [Fact]
    public void RunWithParametersOnNvmeMatchesTheResidentRunAndResumes()
    {
        using var resident = new TinyRunRecipe();
        Execute(resident.Load(), CancellationToken.None);
        SortedDictionary<long, double> expected = RunMetricsLog.ReadLosses(Path.Combine(resident.RunDirectory, RunMetricsLog.FileName));

        using var streamed = new TinyRunRecipe();
        using var cancel = new CancellationTokenSource();
        cancel.Cancel();
        RunResult first = Execute(streamed.Load("offload.params=nvme"), cancel.Token);
        Assert.Equal(1, first.Step);
        RunResult resumed = Execute(streamed.Load("offload.params=nvme", "resume=true"), CancellationToken.None);
        Assert.Equal(8, resumed.Step);
        SortedDictionary<long, double> actual = RunMetricsLog.ReadLosses(Path.Combine(streamed.RunDirectory, RunMetricsLog.FileName));
        Assert.Equal(expected, actual);

        // the final checkpoint's model was exported by streaming the weights from NVMe: same bytes as the resident run's
        string Weights(TinyRunRecipe run) => Path.Combine(run.RunDirectory, "checkpoints", "step_8", "model", "model.safetensors");
        Assert.Equal(File.ReadAllBytes(Weights(resident)), File.ReadAllBytes(Weights(streamed)));
        Assert.Empty(Directory.GetFiles(Path.Combine(streamed.RunDirectory, "swap"))); // the weight file went with the engine
    }

    [Fact]
    public void AutoMovesTheWeightsToNvmeWhenNothingElseFits()
    {
        using var tiny = new TinyRunRecipe();
        // 16 layers: the weights outgrow the 3 layer slots and the write-back buffers that replace them
        RunPlan Plan(params string[] overrides) => RunPlan.Create(tiny.Load(["model.config.num_hidden_layers=16", .. overrides]), baselineByteCount: 0);
        long withWeights = Plan("offload.params=host").HostPeakByteCount(0);
        long withoutWeights = Plan("offload.params=nvme").HostPeakByteCount(0);
        Assert.True(withoutWeights < withWeights, $"{withoutWeights} should be below {withWeights}");
        string between = ((withWeights + withoutWeights) / 2.0 / (1L << 30)).ToString("R", CultureInfo.InvariantCulture);
        RunPlan auto = Plan("offload.params=auto", $"offload.host_gb={between}");
        Assert.True(auto.ParametersOnNvme);
        Assert.True(auto.NvmeReadBytesPerStep > Plan("offload.params=host").NvmeReadBytesPerStep);
        Assert.False(Plan("offload.params=auto").ParametersOnNvme); // 1 GiB fits everything: the weights stay resident
        var refused = Assert.Throws<UserErrorException>(() => Plan("offload.params=auto", $"offload.host_gb={(withoutWeights / 2.0 / (1L << 30)).ToString("R", CultureInfo.InvariantCulture)}"));
        Assert.Contains("weights on NVMe", refused.Message);
    }
}
