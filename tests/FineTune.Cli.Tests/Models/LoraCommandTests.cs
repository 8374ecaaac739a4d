using System.Globalization;
using System.Text.Json;
using Xunit;

namespace FineTune.Cli.Tests.Models;

/// <summary>
/// The LoRA surface of the CLI: on the reference adapter (tests/reference/make_lora_fixtures.py) `eval --adapter` and
/// `export --adapter --merge`; `plan` of a LoRA recipe (the LoRA engine's tiers and traffic); and a LoRA run over a
/// base folder streamed from NVMe, resumed, exported as its PEFT folder (the checkpoint's bytes) and merged (the
/// merged model evaluates as base + exported adapter).
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
    public void PlanShowsTheLoraEnginesPlan()
    {
        string quickstart = Path.Combine(CliRunner.RepositoryRoot(), "recipes", "quickstart.yaml");
        string[] overrides = ["model.adapter=lora", "model.lora.rank=4", $"output_dir={_scratch}/run", $"offload.nvme_dir={_scratch}/run/swap", "offload.params=nvme"];

        var plan = CliRunner.Run(["plan", quickstart, .. overrides]);
        Assert.True(plan.ExitCode == ExitCodes.Success, plan.Error);
        // hidden 128, 4 layers, 4 heads of 32 on 2 KV heads: per layer q 4 (128 + 128), k and v 4 (128 + 64), o 4 (128 + 128).
        Assert.Contains("adapter parameters         14,336", plan.Out);
        Assert.Contains("lora: rank 4, alpha 16 (scale 4)", plan.Out);
        Assert.Contains($"base (frozen)           0.003 GiB  nvme ({_scratch}/run/swap), read-only, streamed layer by layer through 3 host slots", plan.Out);
        Assert.Contains("adapter states              0 GiB  nvme", plan.Out); // quickstart puts optimizer_states on nvme
        Assert.Contains("never written", plan.Out);
        Assert.DoesNotContain("gradients (fp32)", plan.Out); // full fine-tuning's plan lines are not printed
        Assert.False(Directory.Exists(Path.Combine(_scratch, "run")), "plan creates nothing");
    }

    [Fact]
    public void RunTrainsLoraResumesAndExportsItsPeftFolderAndTheMergedModel()
    {
        using var tiny = new FineTune.Trainer.Tests.Runs.TinyRunRecipe();
        string baseFolder = Path.Combine(_scratch, "base"), peft = Path.Combine(_scratch, "peft"), merged = Path.Combine(_scratch, "merged");
        using (FineTune.Torch.TensorScope.Enter())
        using (var created = FineTune.Trainer.Models.LlamaModel.Create(FineTune.Trainer.Runs.RunSetup.ConfigOf(tiny.Load(), null), 3, FineTune.Torch.DType.Float32, FineTune.Torch.Device.Cpu))
            FineTune.Trainer.Models.LlamaExporter.Export(created, baseFolder);
        string[] lora = ["model.adapter=lora", "model.lora.rank=4", "model.lora.trainable=[norm]", "optimizer.lr=1e-2", $"model.path={baseFolder}", "model.config=null", "offload.params=nvme"];

        var run = CliRunner.Run(["run", tiny.RecipePath, .. lora, "training.max_steps=4"]);
        Assert.True(run.ExitCode == ExitCodes.Success, run.Error + run.Out);
        Assert.Contains("LoRA r 4 alpha 16 on q_proj, k_proj, v_proj, o_proj", run.Out);
        var resume = CliRunner.Run("resume", tiny.RunDirectory, "training.max_steps=6");
        Assert.True(resume.ExitCode == ExitCodes.Success, resume.Error + resume.Out);
        string step6 = Path.Combine(tiny.RunDirectory, "checkpoints", "step_6");
        Assert.Contains($"resuming from {Path.Combine(tiny.RunDirectory, "checkpoints", "step_4")} (step 4)", resume.Out);

        var export = CliRunner.Run("export", step6, peft);
        Assert.True(export.ExitCode == ExitCodes.Success, export.Error);
        foreach (string name in new[] { "adapter_config.json", "adapter_model.safetensors" })
            Assert.Equal(File.ReadAllBytes(Path.Combine(step6, "adapter", name)), File.ReadAllBytes(Path.Combine(peft, name)));
        Assert.Contains($"\"base_model_name_or_path\": \"{Path.GetFullPath(baseFolder)}\"", File.ReadAllText(Path.Combine(peft, "adapter_config.json")));
        var exportMerged = CliRunner.Run("export", tiny.RunDirectory, merged, "--merge", "--dtype", "f32");
        Assert.True(exportMerged.ExitCode == ExitCodes.Success, exportMerged.Error);
        Assert.Contains("merged into 8 weights", exportMerged.Out);

        string tokens = "10 52 99 101 32 7 64 200";
        var withAdapter = CliRunner.Run("eval", "--model", baseFolder, "--adapter", peft, "--tokens", tokens, "--device", "cpu");
        var ofMerged = CliRunner.Run("eval", "--model", merged, "--tokens", tokens, "--device", "cpu");
        var ofBase = CliRunner.Run("eval", "--model", baseFolder, "--tokens", tokens, "--device", "cpu");
        Assert.True(withAdapter.ExitCode == 0 && ofMerged.ExitCode == 0 && ofBase.ExitCode == 0, withAdapter.Error + ofMerged.Error + ofBase.Error);
        double adapted = CrossEntropy(withAdapter.Out), fromMerged = CrossEntropy(ofMerged.Out), fromBase = CrossEntropy(ofBase.Out);
        Assert.True(Math.Abs(adapted - fromMerged) < 1e-5, $"base + exported adapter {adapted} vs merged export {fromMerged}");
        Assert.True(Math.Abs(adapted - fromBase) > 1e-4, $"six steps changed nothing: {adapted} vs {fromBase}");

        var withAdapterOption = CliRunner.Run("export", step6, Path.Combine(_scratch, "x"), "--adapter", peft, "--merge");
        Assert.Equal(ExitCodes.UserError, withAdapterOption.ExitCode);
        Assert.Contains("is a LoRA checkpoint and holds its adapter; drop --adapter", withAdapterOption.Error);
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
