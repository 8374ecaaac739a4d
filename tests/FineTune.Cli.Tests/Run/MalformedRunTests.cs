using Xunit;

using FineTune.Trainer.Tests.Runs;

namespace FineTune.Cli.Tests.Run;

/// <summary>Run, resume, plan and export refusals beyond `validate`: each exits 2 with one sentence naming what to change.</summary>
public sealed class MalformedRunTests
{
    [Fact]
    public void MissingModelFolderIsAUserError()
    {
        using var tiny = new TinyRunRecipe();
        string missing = Path.Combine(tiny.OutputDirectory, "no-such-model");
        AssertUserError(["run", tiny.RecipePath, $"model.path={missing}", "model.config=null"], "no-such-model");
    }

    [Fact]
    public void MissingNvmeDirectoryIsAUserError()
    {
        using var tiny = new TinyRunRecipe();
        AssertUserError(["run", tiny.RecipePath, "offload.nvme_dir=/no/such/nvme"], "offload.nvme_dir");
    }

    [Fact]
    public void ResumeOfAFolderWithoutCheckpointsIsAUserError()
    {
        using var tiny = new TinyRunRecipe();
        AssertUserError(["resume", tiny.OutputDirectory], "has no checkpoints/ folder, so it is not a FineTune run folder");
    }

    [Fact]
    public void ParameterOffloadWithoutAnNvmeDirectoryIsAUserError()
    {
        using var tiny = new TinyRunRecipe();
        AssertUserError(["run", tiny.RecipePath, "offload.params=nvme", "offload.nvme_dir=null", "offload.optimizer_states=host", "offload.activations=host"], "offload.nvme_dir");
    }

    [Fact]
    public void PlanRefusesWhenNothingFitsTheHostBudget()
    {
        using var tiny = new TinyRunRecipe();
        AssertUserError(["plan", tiny.RecipePath, "offload.host_gb=0.001"], "Nothing fits");
    }

    [Fact]
    public void PlanShowsTiersMemoryTrafficAndTime()
    {
        using var tiny = new TinyRunRecipe();
        var (code, output, error) = CliRunner.Run("plan", tiny.RecipePath);
        Assert.True(code == 0, error);
        // 2 layers, C = 32, I = 64, V = 260, GQA 4:2 (head_dim 8, kv width 16), untied:
        // embed 260*32 + 2 * (q 32*32 + k 16*32 + v 16*32 + o 32*32 + gate/up/down 3*64*32 + 2 norms 32) + norm 32 + head 260*32
        long parameters = 260 * 32 + 2 * (32 * 32 + 16 * 32 + 16 * 32 + 32 * 32 + 3 * 64 * 32 + 2 * 32) + 32 + 260 * 32;
        Assert.Contains($"model: {parameters:N0} parameters", output);
        Assert.Contains("optimizer states", output);
        Assert.Contains("nvme (", output);
        Assert.Contains("predicted step time", output);
        // optimizer states on NVMe: 12 bytes per parameter read and written per step, plus 2 layers x 2 x 2 micro-batches of (B 2, T 32, C 32) fp32 activations
        long bytesPerStep = 12L * parameters + 2 * 2 * (2 * 32 * 32 * 4);
        Assert.Contains($"read {(bytesPerStep / (double)(1L << 30)).ToString("0.###", System.Globalization.CultureInfo.InvariantCulture)} GiB", output);
    }

    [Fact]
    public void ExportOfADamagedOrMissingSourceIsAUserError()
    {
        using var tiny = new TinyRunRecipe();
        AssertUserError(["export", Path.Combine(tiny.OutputDirectory, "nothing"), Path.Combine(tiny.OutputDirectory, "hf")], $"export: {Path.Combine(tiny.OutputDirectory, "nothing")} does not exist");
        AssertUserError(["export", "", Path.Combine(tiny.OutputDirectory, "hf")], "export was given an empty path");
        AssertUserError(["export", tiny.RecipePath, Path.Combine(tiny.OutputDirectory, "hf")], $"export: {tiny.RecipePath} is a file");
    }

    private static void AssertUserError(string[] args, string expectedFragment)
    {
        var (code, output, error) = CliRunner.Run(args);
        Assert.True(code == 2, $"exit {code}\n{output}\n{error}");
        Assert.Contains(expectedFragment, error);
        Assert.Single(error.Trim().Split('\n'));
    }
}
