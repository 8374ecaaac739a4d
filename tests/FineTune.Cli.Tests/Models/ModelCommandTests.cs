using System.CommandLine;
using System.Text.Json;
using FineTune.Cli;
using Xunit;

namespace FineTune.Cli.Tests.Models;

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ConsoleCaptureCollection
{
    public const string Name = "Models console capture";
}

/// <summary>`finetune eval` and `finetune export` end to end on the reference fixtures (captured console output).</summary>
[Collection(ConsoleCaptureCollection.Name)]
public sealed class ModelCommandTests
{
    [Fact]
    public void EvalPrintsTheReferenceCrossEntropy()
    {
        string folder = Fixture("llama_gqa_tied");
        using JsonDocument inputs = JsonDocument.Parse(File.ReadAllText(Path.Combine(folder, "expected", "inputs.json")));
        string tokens = string.Join(' ', inputs.RootElement.GetProperty("input_ids")[0].EnumerateArray().Select(e => e.GetInt64()));
        double expected = inputs.RootElement.GetProperty("eval").GetProperty("mean_cross_entropy").GetDouble();

        var (code, stdout, stderr) = Run("eval", "--model", folder, "--tokens", tokens, "--seq", "6", "--device", "cpu");
        Assert.True(code == ExitCodes.Success, stderr);
        string line = stdout.Split('\n').Single(l => l.StartsWith("mean cross-entropy: "));
        double printed = double.Parse(line.Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(Math.Abs(printed - expected) < 1e-5, $"{printed} vs {expected}");
        Assert.Contains($"perplexity: {Math.Exp(printed):F4}"[..16], stdout);
    }

    [Theory]
    [InlineData("--tokens", "1 2 x", "\"x\" is not a token id")]
    [InlineData("--tokens", "1 500", "outside the model's vocabulary")]
    [InlineData("--seq", "4", "exactly one of --tokens")]
    public void EvalUserErrorsExitWithCode2(string option, string value, string message)
    {
        var (code, _, stderr) = Run("eval", "--model", Fixture("llama_gqa_tied"), option, value, "--device", "cpu");
        Assert.Equal(ExitCodes.UserError, code);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public void ExportConvertsToBf16AndShards()
    {
        string output = Path.Combine(Path.GetTempPath(), "finetune-export-" + Guid.NewGuid().ToString("N"));
        try
        {
            var (code, stdout, stderr) = Run("export", "--model", Fixture("llama_bias_llama3"), "--out", output, "--dtype", "bf16", "--max-shard-gb", "0.00003");
            Assert.True(code == ExitCodes.Success, stderr);
            Assert.Contains("as bfloat16", stdout);
            Assert.True(File.Exists(Path.Combine(output, "model.safetensors.index.json")));
            Assert.Contains("\"torch_dtype\": \"bfloat16\"", File.ReadAllText(Path.Combine(output, "config.json")));

            var (again, _, error) = Run("export", "--model", Fixture("llama_bias_llama3"), "--out", output);
            Assert.Equal(ExitCodes.UserError, again);
            Assert.Contains("already holds", error);
        }
        finally
        {
            if (Directory.Exists(output))
                Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void EvalTextUsesTheFolderTokenizerLikeTheSameTokens()
    {
        // A fresh 2003-token model (the tiny Qwen2-style tokenizer's vocabulary) exported with that tokenizer.json:
        // --text FILE must score exactly the ids the tokenizer gives for the file.
        string folder = Path.Combine(Path.GetTempPath(), "finetune-evaltext-" + Guid.NewGuid().ToString("N"));
        string source = Path.Combine(folder, "source");
        Directory.CreateDirectory(source);
        try
        {
            File.Copy(Path.Combine(FixturesRoot(), "tokenizers", "tiny_bpe_tokenizer.json"), Path.Combine(source, "tokenizer.json"));
            var tokenizer = FineTune.Trainer.Tokenizers.TokenizerLoader.Load(source);
            var config = new FineTune.Trainer.Models.LlamaConfig
            {
                ModelType = "llama", VocabSize = tokenizer.VocabularyCount, HiddenSize = 32, IntermediateSize = 48,
                LayerCount = 1, HeadCount = 2, KvHeadCount = 1, HeadDim = 16, MaxPositionEmbeddings = 64,
            };
            string modelFolder = Path.Combine(folder, "model");
            using (FineTune.Torch.TensorScope.Enter())
            using (var model = FineTune.Trainer.Models.LlamaModel.Create(config, 1, FineTune.Torch.DType.Float32, FineTune.Torch.Device.Cpu))
                FineTune.Trainer.Models.LlamaExporter.Export(model, modelFolder, tokenizerSourceFolder: source);
            string textFile = Path.Combine(folder, "sample.txt");
            File.WriteAllText(textFile, "The quick brown fox jumps over the lazy dog. 12345 times!");
            int[] ids = tokenizer.Encode(File.ReadAllText(textFile), addSpecialTokens: true);

            var (code, fromText, stderr) = Run("eval", "--model", modelFolder, "--text", textFile, "--seq", "8", "--device", "cpu");
            Assert.True(code == ExitCodes.Success, stderr);
            var (code2, fromTokens, stderr2) = Run("eval", "--model", modelFolder, "--tokens", string.Join(' ', ids), "--seq", "8", "--device", "cpu");
            Assert.True(code2 == ExitCodes.Success, stderr2);
            Assert.Contains($"tokens: {ids.Length} ", fromText);
            Assert.Equal(fromTokens.Split('\n').Skip(1), fromText.Split('\n').Skip(1));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private static (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var root = new RootCommand("test");
        foreach (Command command in CommandList.All())
            root.Subcommands.Add(command);
        TextWriter oldOut = Console.Out, oldErr = Console.Error;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        Console.SetOut(stdout);
        Console.SetError(stderr);
        try
        {
            int code = ExitCodes.Run(root, args);
            return (code, stdout.ToString(), stderr.ToString());
        }
        finally
        {
            Console.SetOut(oldOut);
            Console.SetError(oldErr);
        }
    }

    private static string Fixture(string name) => Path.Combine(FixturesRoot(), "models", name);

    /// <summary>tests/FineTune.Trainer.Tests/Fixtures, found by walking up from the test binary.</summary>
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
