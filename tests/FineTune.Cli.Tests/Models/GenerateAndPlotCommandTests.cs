using FineTune.IO;
using FineTune.Tests;
using FineTune.Trainer.Tests.Runs;
using Xunit;

namespace FineTune.Cli.Tests.Models;

/// <summary>
/// `finetune generate` and `finetune plot` end to end on a tiny run trained here (byte tokenizer, synthetic reverse
/// task): the run folder, its checkpoint and the KV-cache-free path give the same greedy text; the summary line on
/// stderr; chat with the default template; each refusal exits 2 with one sentence.
/// </summary>
[Collection(ConsoleCaptureCollection.Name)]
public sealed class GenerateAndPlotCommandTests(GenerateAndPlotCommandTests.TrainedRun run) : IClassFixture<GenerateAndPlotCommandTests.TrainedRun>
{
    private readonly TinyRunRecipe _tiny = run.Tiny;

    /// <summary>The tiny run, trained once for all the tests of the class.</summary>
    public sealed class TrainedRun : IDisposable
    {
        public TrainedRun()
        {
            var (code, _, error) = CliRunner.Run("run", Tiny.RecipePath);
            Assert.True(code == ExitCodes.Success, error);
        }

        internal TinyRunRecipe Tiny { get; } = new();

        public void Dispose() => Tiny.Dispose();
    }

    [Fact]
    public void GenerateFromARunItsCheckpointAndWithoutCacheAgree()
    {
        string[] prompt = ["--instruction", "reverse: abcd", "--max-new-tokens", "12"];
        var (code, fromRun, error) = CliRunner.Run(["generate", "--model", _tiny.RunDirectory, .. prompt]);
        Assert.True(code == ExitCodes.Success, error);
        Assert.Matches(@"^\(\d+ tokens after a 15-token prompt, (stopped at the end of the answer|reached --max-new-tokens); [0-9.]+ tokens/s\)", error.Trim());

        var (_, fromCheckpoint, _) = CliRunner.Run(["generate", "--model", Path.Combine(_tiny.RunDirectory, "checkpoints", "step_8"), .. prompt]);
        var (_, noCache, noCacheError) = CliRunner.Run(["generate", "--model", _tiny.RunDirectory, "--no-kv-cache", .. prompt]);
        Assert.Equal(fromRun, fromCheckpoint);
        Assert.Equal(fromRun, noCache);
        Assert.Contains("no KV cache", noCacheError);
    }

    [Fact]
    public void GenerateOnAnExportFormatsPromptsAsTheRunTrained()
    {
        string export = Path.Combine(_tiny.OutputDirectory, "exported-for-generate");
        var (exportCode, _, exportError) = CliRunner.Run("export", _tiny.RunDirectory, export);
        Assert.True(exportCode == ExitCodes.Success, exportError);
        string[] prompt = ["--instruction", "reverse: abcd", "--max-new-tokens", "12"];
        // the run's compact prompt (15 tokens) and its byte tokenizer, not alpaca's and no --tokenizer
        var (code, fromExport, error) = CliRunner.Run(["generate", "--model", export, .. prompt]);
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("after a 15-token prompt", error);
        Assert.Equal(CliRunner.Run(["generate", "--model", _tiny.RunDirectory, .. prompt]).Out, fromExport);
    }

    [Fact]
    public void SampledGenerationRepeatsWithItsSeed()
    {
        string[] args = ["generate", "--model", _tiny.RunDirectory, "--prompt", "rev", "--temperature", "1.2", "--top-k", "50", "--seed", "9", "--max-new-tokens", "16"];
        Assert.Equal(CliRunner.Run(args).Out, CliRunner.Run(args).Out);
    }

    [Fact]
    public void ChatUsesTheDefaultTemplateForTheByteTokenizer()
    {
        var (code, _, error) = CliRunner.Run("generate", "--model", _tiny.RunDirectory, "--chat", "hello", "--max-new-tokens", "4");
        Assert.True(code == ExitCodes.Success, error);
        Assert.Contains("chat template: the byte tokenizer has no chat template; using FineTune's default ChatML chat template", error);
    }

    [Theory]
    [InlineData(new[] { "--prompt", "a", "--chat", "b" }, "give exactly one of --prompt TEXT, --instruction TEXT or --chat TEXT.")]
    [InlineData(new[] { "--max-new-tokens", "4" }, "give exactly one of --prompt TEXT, --instruction TEXT or --chat TEXT.")]
    [InlineData(new[] { "--prompt", "a", "--top-p", "1.5" }, "--top-p 1.5 must be in (0, 1].")]
    [InlineData(new[] { "--prompt", "a", "--max-new-tokens", "0" }, "--max-new-tokens 0 must be at least 1.")]
    public void GenerateRefusalsNameTheOption(string[] options, string message)
    {
        var (code, _, error) = CliRunner.Run(["generate", "--model", _tiny.RunDirectory, .. options]);
        Assert.Equal(ExitCodes.UserError, code);
        Assert.Equal($"error: {message}", error.Trim());
    }

    [Fact]
    public void GenerateNeedsAModelAndATokenizerItCanFind()
    {
        var (missing, _, missingError) = CliRunner.Run("generate", "--model", Path.Combine(_tiny.OutputDirectory, "nope"), "--prompt", "a");
        Assert.Equal(ExitCodes.UserError, missing);
        Assert.Contains("no such folder", missingError);

        string exported = Path.Combine(_tiny.OutputDirectory, "hf-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(ExitCodes.Success, CliRunner.Run("export", _tiny.RunDirectory, exported).ExitCode);
        // an HF folder from elsewhere: no training recipe beside the weights names the byte tokenizer
        File.Delete(Path.Combine(exported, FineTune.Trainer.Generation.GenerationSource.ExportedRecipeFileName));
        var (code, _, error) = CliRunner.Run("generate", "--model", exported, "--prompt", "a");
        Assert.Equal(ExitCodes.UserError, code);
        Assert.Contains("--tokenizer byte", error);
        Assert.Equal(ExitCodes.Success, CliRunner.Run("generate", "--model", exported, "--tokenizer", "byte", "--prompt", "a", "--max-new-tokens", "2").ExitCode);
    }

    [Fact]
    public void PlotDrawsRunsSideBySideAndPrintsTheirCurves()
    {
        Assert.True(File.Exists(Path.Combine(_tiny.RunDirectory, "loss.png"))); // the run drew its own
        string png = Path.Combine(_tiny.OutputDirectory, "two-" + Guid.NewGuid().ToString("N") + ".png");
        var (code, stdout, error) = CliRunner.Run("plot", _tiny.RunDirectory, _tiny.RunDirectory, "-o", png);
        Assert.True(code == ExitCodes.Success, error);
        Assert.Equal(2, stdout.Split('\n').Count(l => l.StartsWith("out: train loss ", StringComparison.Ordinal) && l.Contains("(8 steps)", StringComparison.Ordinal)));
        Assert.Contains($"wrote {png}", stdout);
        Assert.True(new FileInfo(png).Length > 1000);

        var (missing, _, missingError) = CliRunner.Run("plot", Path.Combine(_tiny.OutputDirectory, "nope"));
        Assert.Equal(ExitCodes.UserError, missing);
        Assert.Contains("no such run folder", missingError);
    }

    [Fact]
    public void AGenerationConfigWithAKeyTwiceOversizedOrAFifoIsRefusedNamingIt()
    {
        // issue 21: generation_config.json was read whole, unbounded, with the last of two keys silently winning
        string exported = Path.Combine(_tiny.OutputDirectory, "hf-" + Guid.NewGuid().ToString("N"));
        Assert.Equal(ExitCodes.Success, CliRunner.Run("export", _tiny.RunDirectory, exported).ExitCode);
        string path = Path.Combine(exported, "generation_config.json");
        string[] generate = ["generate", "--model", exported, "--tokenizer", "byte", "--prompt", "a", "--max-new-tokens", "2"];
        var cases = new (Action Plant, string Sentence)[]
        {
            (() => File.WriteAllText(path, "{\"eos_token_id\": 2, \"eos_token_id\": 3}"), $"{path}: key $.eos_token_id appears twice, and which one counts is ambiguous; fix or remove the file."),
            (() => File.WriteAllText(path, "{\"eos_token_id\": [2, \"x\"]}"), $"{path}: eos_token_id holds \"x\", which is not a token id; give an id or a list of ids (or remove the key)."),
            (() => HostileFiles.Oversized(path, InputFile.ConfigLimitByteCount + 1), $"generation_config.json {path} has "),
            (() => HostileFiles.Fifo(path), $"generation_config.json {path} is a FIFO (named pipe), not a regular file"),
        };
        foreach (var (plant, sentence) in cases)
        {
            plant();
            var (code, _, error) = CliRunner.Run(generate);
            Assert.True(code == ExitCodes.UserError, $"{sentence}: exit {code} {error}");
            Assert.StartsWith($"error: {sentence}", error.Trim());
            Assert.Single(error.Trim().Split('\n'));
        }
    }

    [Fact]
    public void PlotRefusesALinkedLossPngInTheRunFolder()
    {
        string run = Directory.CreateDirectory(Path.Combine(_tiny.OutputDirectory, "linked-" + Guid.NewGuid().ToString("N"))).FullName;
        File.Copy(Path.Combine(_tiny.RunDirectory, "metrics.jsonl"), Path.Combine(run, "metrics.jsonl"));
        string outside = Path.Combine(_tiny.OutputDirectory, "precious-" + Guid.NewGuid().ToString("N") + ".png");
        File.WriteAllText(outside, "not a plot\n");
        string link = Path.Combine(run, "loss.png");
        File.CreateSymbolicLink(link, outside);

        var (code, _, error) = CliRunner.Run("plot", run);

        Assert.Equal(ExitCodes.UserError, code);
        Assert.Equal($"error: {link} is a symbolic link (to {outside}), and FineTune never writes or deletes through links out of output_dir; remove the link.", error.Trim());
        Assert.Equal("not a plot\n", File.ReadAllText(outside));
    }
}
