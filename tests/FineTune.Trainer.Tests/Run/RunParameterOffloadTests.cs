using System.Globalization;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Runs;
using FineTune.Trainer.Tokenizers;
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
        // 16 layers: the weights outgrow the 3 layer slots and the write-back buffers that replace them (recompute
        // always: training.recompute auto would spend the headroom on kept layers, which NVMe weights cannot keep)
        RunPlan Plan(params string[] overrides) => RunPlan.Create(tiny.Load(["model.config.num_hidden_layers=16", "training.recompute=always", .. overrides]), baselineByteCount: 0);
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

    [Fact]
    public void AModelFolderTrainsWithItsWeightsOnNvmeLikeAResidentOne()
    {
        // model.path with params on NVMe is opened, not loaded: the engine copies it into its weight file one tensor at a
        // time; the arithmetic is that of the resident run from the same folder
        using var resident = new TinyRunRecipe();
        using var streamed = new TinyRunRecipe();
        string folder = Path.Combine(resident.OutputDirectory, "hf");
        using (LlamaModel source = LlamaModel.Create(RunSetup.ConfigOf(resident.Load(), new ByteTokenizer()), 11, DType.Float32, Device.Cpu))
            LlamaExporter.Export(source, folder);
        string[] fromFolder = ["model.config=null", $"model.path={folder}", "tokenizer.kind=byte"];
        RunResult a = Execute(resident.Load([.. fromFolder, "offload.params=host"]), CancellationToken.None);
        RunResult b = Execute(streamed.Load([.. fromFolder, "offload.params=nvme"]), CancellationToken.None);
        Assert.Equal(8, b.Step);
        Assert.Equal(RunMetricsLog.ReadLosses(a.MetricsFile), RunMetricsLog.ReadLosses(b.MetricsFile));
        string Weights(TinyRunRecipe run) => Path.Combine(run.RunDirectory, "checkpoints", "step_8", "model", "model.safetensors");
        Assert.Equal(File.ReadAllBytes(Weights(resident)), File.ReadAllBytes(Weights(streamed)));
    }

    [Fact]
    public void APlanForAModelFolderOnNvmeCountsOneTensorNotTheWholeModelWhileLoading()
    {
        using var tiny = new TinyRunRecipe();
        string[] big = ["model.config.num_hidden_layers=48", "model.config.hidden_size=512", "model.config.intermediate_size=1376",
            "model.config.vocab_size=8000", "model.config.num_attention_heads=8", "model.config.num_key_value_heads=8",
            "offload.nvme_gb=null", "offload.host_gb=100"];
        var config = RunSetup.ConfigOf(tiny.Load(big), null);
        string folder = Path.Combine(tiny.OutputDirectory, "big");
        Directory.CreateDirectory(folder);
        LlamaConfigWriter.Write(config, DType.Float32, Path.Combine(folder, "config.json"));
        RunPlan Plan(params string[] overrides) => RunPlan.Create(tiny.Load(["model.config=null", $"model.path={folder}", "tokenizer.kind=byte", "offload.nvme_gb=null", "offload.host_gb=100", .. overrides]), baselineByteCount: 0);

        RunPlan streamed = Plan("offload.params=nvme"), resident = Plan("offload.params=host");
        long largest = LlamaTensorNames.All(config).Max(s => s.ElementCount);
        Assert.Equal(resident.WeightByteCount, resident.LoadingByteCount); // Load: the whole model is alive until the engine has it
        // the largest tensor read (up to F64 on disk, through a chunk array of at most 64 MiB) and converted, plus the
        // 8 MiB staging buffer and one sub-group window
        long converted = largest * (8 + streamed.ElementByteCount);
        Assert.InRange(streamed.LoadingByteCount, converted + (8L << 20), converted + (82L << 20));
        Assert.True(streamed.LoadingByteCount < streamed.WeightByteCount / 3, $"{streamed.LoadingByteCount} vs {streamed.WeightByteCount}");
        // a resume opens its checkpoint folder the same way, even for a run that started from model.config
        RunPlan fromConfig(bool resuming) => RunPlan.Create(tiny.Load([.. big, "offload.params=nvme"]), 0, resuming);
        Assert.Equal(streamed.LoadingByteCount, fromConfig(resuming: true).LoadingByteCount);
        // and a creation from model.config with params on NVMe draws one chunk at a time into the weight file
        Assert.True(fromConfig(resuming: false).OpensModelLazily);
        Assert.True(fromConfig(resuming: false).LoadingByteCount < streamed.WeightByteCount / 3, $"{fromConfig(resuming: false).LoadingByteCount} vs {streamed.WeightByteCount}");
        // a budget between the two peaks: auto keeps the weights resident only if that fits, and here it does not
        string between = ((resident.HostPeakByteCount(0) + streamed.HostPeakByteCount(0)) / 2.0 / (1L << 30)).ToString("R", CultureInfo.InvariantCulture);
        Assert.True(Plan("offload.params=auto", $"offload.host_gb={between}").ParametersOnNvme);
    }
}
