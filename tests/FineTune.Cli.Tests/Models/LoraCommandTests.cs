using System.Globalization;
using System.Text.Json;
using Xunit;

namespace FineTune.Cli.Tests.Models;

/// <summary>
/// The LoRA surface of the CLI on the reference adapter (tests/reference/make_lora_fixtures.py): `eval --adapter`,
/// `export --adapter --merge`, `plan` of a LoRA recipe, and `run` refusing a LoRA recipe with exit code 2 while the
/// engine does not train adapters.
/// </summary>
[Collection(ConsoleCaptureCollection.Name)]
public sealed class LoraCommandTests : IDisposable
{
    private readonly string _scratch = Path.Combine(Path.GetTempPath(), "finetune-lora-cli-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_scratch))
            Directory.Delete(_scratch, recursive: true);
    }

    [Fact]
    public void EvalWithTheAdapterEqualsEvalOfItsMergedExport()
    {
        string fixture = Path.Combine(FixturesRoot(), "lora", "lora_gqa_tied");
        string baseFolder = Path.Combine(FixturesRoot(), "models", "llama_gqa_tied");
        string adapter = Path.Combine(fixture, "adapter");
        using JsonDocument inputs = JsonDocument.Parse(File.ReadAllText(Path.Combine(fixture, "expected", "inputs.json")));
        string tokens = string.Join(' ', inputs.RootElement.GetProperty("input_ids")[0].EnumerateArray().Select(e => e.GetInt64()));
        string merged = Path.Combine(_scratch, "merged");

        var export = CliRunner.Run("export", baseFolder, merged, "--adapter", adapter, "--merge", "--dtype", "f32");
        Assert.True(export.ExitCode == ExitCodes.Success, export.Error);
        Assert.Contains("merged into 8 weights", export.Out);
        var withAdapter = CliRunner.Run("eval", "--model", baseFolder, "--adapter", adapter, "--tokens", tokens, "--seq", "6", "--device", "cpu");
        Assert.True(withAdapter.ExitCode == ExitCodes.Success, withAdapter.Error);
        Assert.Contains("(LoRA r 4, alpha 8 on q_proj, k_proj, v_proj, o_proj; 1,792 parameters)", withAdapter.Out); // 2 layers x 4 (q 64 + k 48 + v 48 + o 64)
        var ofMerged = CliRunner.Run("eval", "--model", merged, "--tokens", tokens, "--seq", "6", "--device", "cpu");
        var ofBase = CliRunner.Run("eval", "--model", baseFolder, "--tokens", tokens, "--seq", "6", "--device", "cpu");

        double adapted = CrossEntropy(withAdapter.Out), fromMerged = CrossEntropy(ofMerged.Out), fromBase = CrossEntropy(ofBase.Out);
        Assert.True(Math.Abs(adapted - fromMerged) < 1e-5, $"base + adapter {adapted} vs merged {fromMerged}");
        Assert.True(Math.Abs(adapted - fromBase) > 1e-2, $"the adapter changed nothing: {adapted} vs {fromBase}");
    }

    [Theory]
    [InlineData("--merge", null, "--merge needs --adapter PEFT_DIR")]
    [InlineData(null, "adapter", "--adapter is only used with --merge")]
    public void MergeAndAdapterGoTogether(string? merge, string? adapter, string message)
    {
        var args = new List<string> { "export", Path.Combine(FixturesRoot(), "models", "llama_gqa_tied"), Path.Combine(_scratch, "out") };
        if (merge is not null)
            args.Add(merge);
        if (adapter is not null)
            args.AddRange(["--adapter", Path.Combine(FixturesRoot(), "lora", "lora_gqa_tied", "adapter")]);
        var (code, _, error) = CliRunner.Run([.. args]);
        Assert.Equal(ExitCodes.UserError, code);
        Assert.Contains(message, error);
        Assert.False(Directory.Exists(Path.Combine(_scratch, "out")));
    }

    [Fact]
    public void PlanShowsTheAdapterCountsAndRunRefusesLora()
    {
        string quickstart = Path.Combine(CliRunner.RepositoryRoot(), "recipes", "quickstart.yaml");
        string[] overrides = ["model.adapter=lora", "model.lora.rank=4", $"output_dir={_scratch}/run", $"offload.nvme_dir={_scratch}/run/swap"];

        var plan = CliRunner.Run(["plan", quickstart, .. overrides]);
        Assert.True(plan.ExitCode == ExitCodes.Success, plan.Error);
        // hidden 128, 4 layers, 4 heads of 32 on 2 KV heads: per layer q 4 (128 + 128), k and v 4 (128 + 64), o 4 (128 + 128).
        Assert.Contains("adapter parameters         14,336", plan.Out);
        Assert.Contains("lora: rank 4, alpha 16 (scale 4)", plan.Out);

        var run = CliRunner.Run(["run", quickstart, .. overrides]);
        Assert.Equal(ExitCodes.UserError, run.ExitCode);
        Assert.Contains("LoRA training is not wired into the training engine yet", run.Error);
        Assert.DoesNotContain("   at ", run.Error);
        Assert.False(Directory.Exists(Path.Combine(_scratch, "run")), "a refused run must create nothing");
    }

    private static double CrossEntropy(string output) =>
        double.Parse(output.Split('\n').Single(l => l.StartsWith("mean cross-entropy: ", StringComparison.Ordinal)).Split(' ')[2], CultureInfo.InvariantCulture);

    private static string FixturesRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, "tests", "FineTune.Trainer.Tests", "Fixtures");
            if (Directory.Exists(candidate))
                return candidate;
        }
        throw new DirectoryNotFoundException("tests/FineTune.Trainer.Tests/Fixtures");
    }
}
