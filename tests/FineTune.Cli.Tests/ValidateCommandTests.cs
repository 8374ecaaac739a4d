using Xunit;

namespace FineTune.Cli.Tests;

/// <summary>
/// `finetune validate`: malformed recipes and overrides each exit with code 2 and one sentence naming the problem
/// (no stack trace); valid ones print the resolved recipe and exit 0.
/// </summary>
public sealed class ValidateCommandTests : IDisposable
{
    // Line numbers below refer to this text: "training:" is line 12, "device: cpu" line 13, output_dir line 14,
    // and anything appended starts at line 15.
    private const string BaseRecipe = """
        model:
          config:
            vocab_size: 300
            hidden_size: 64
            intermediate_size: 176
            num_hidden_layers: 2
            num_attention_heads: 4
            max_position_embeddings: 128
        dataset:
          format: synthetic
          seq_len: 64
        training:
          device: cpu
        output_dir: {root}/out

        """;

    private readonly string _root = Path.Combine(Path.GetTempPath(), "ft-cli-" + Guid.NewGuid().ToString("N"));

    public ValidateCommandTests() => Directory.CreateDirectory(_root);

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>(case name, recipe text with {root}, arguments after the recipe path, phrases the sentence must contain).</summary>
    public static TheoryData<string, string, string[], string[]> MalformedCases() => new()
    {
        { "unknown top-level key", BaseRecipe + "trainig:\n  seed: 1\n", [], ["Unknown recipe key trainig on line 15 of", "closest valid key is training."] },
        { "unknown nested key", BaseRecipe + "optimizer:\n  weight_decy: 0.1\n", [], ["optimizer.weight_decy on line 16", "closest valid key is optimizer.weight_decay."] },
        { "key in the wrong section", BaseRecipe.Replace("  device: cpu", "  device: cpu\n  lr: 0.1"), [], ["Unknown recipe key training.lr on line 14", "optimizer.lr"] },
        { "integer given a word", BaseRecipe.Replace("  device: cpu", "  device: cpu\n  batch_size: four"), [], ["training.batch_size on line 14 of", "is 'four' but must be an integer ≥ 1."] },
        { "number given a word", BaseRecipe + "optimizer:\n  lr: fast\n", [], ["optimizer.lr on line 16", "must be a number > 0"] },
        { "bool given a word", BaseRecipe.Replace("  seq_len: 64", "  seq_len: 64\n  packing: sometimes"), [], ["dataset.packing on line 12", "must be true or false"] },
        { "section given a scalar", BaseRecipe + "logging: verbose\n", [], ["Recipe section logging on line 15", "must be a mapping"] },
        { "unknown choice", BaseRecipe.Replace("device: cpu", "device: gpu"), [], ["training.device on line 13", "must be one of auto, cpu, cuda"] },
        { "negative sequence length", BaseRecipe.Replace("seq_len: 64", "seq_len: -64"), [], ["dataset.seq_len is -64 on line 11", "it must be at least 1."] },
        { "batch size zero", BaseRecipe, ["training.batch_size=0"], ["training.batch_size is 0 on the override training.batch_size=0; it must be at least 1."] },
        { "negative host budget", BaseRecipe, ["offload.host_gb=-2"], ["offload.host_gb is -2", "must be greater than 0"] },
        { "betas not a list", BaseRecipe, ["optimizer.betas=0.9"], ["optimizer.betas", "must be a list of two numbers"] },
        { "no model", BaseRecipe, ["model.config=null"], ["names no model", "model.path"] },
        { "model folder missing", BaseRecipe, ["model.config=null", "model.path={root}/nowhere"], ["model.path {root}/nowhere (the override model.path={root}/nowhere) does not exist"] },
        { "model folder without config.json", BaseRecipe, ["model.config=null", "model.path={root}"], ["has no config.json"] },
        { "model path and config both", BaseRecipe, ["model.path={root}"], ["gives both model.path", "model.config"] },
        { "sequence longer than the model", BaseRecipe, ["dataset.seq_len=512"], ["dataset.seq_len 512", "exceeds the model's max_position_embeddings 128"] },
        { "heads do not divide width", BaseRecipe, ["model.config.hidden_size=66"], ["hidden_size 66 is not divisible by num_attention_heads 4"] },
        { "budgets too small", BaseRecipe, ["offload.host_gb=0.001"], ["The offload budgets hold 0.001 GiB", "needs about 0.00155 GiB (12 bytes per parameter at the least", "raise offload.host_gb"] },
        { "optimizer tier too small", BaseRecipe, ["offload.host_gb=0.0015", "offload.nvme_dir={root}", "offload.optimizer_states=host"], ["offload.host_gb 0.0015 GiB cannot hold the 0.00155 GiB"] },
        { "host below staging need", BaseRecipe, ["offload.host_gb=0.0001", "offload.nvme_dir={root}"], ["offload.host_gb 0.0001", "below the 0.000143 GiB needed to stage the largest tensor"] },
        { "unwritable output dir", BaseRecipe, ["output_dir=/sys/finetune-test-output"], ["output_dir /sys/finetune-test-output", "is not writable"] },
        { "output dir under a file", BaseRecipe.Replace("{root}/out", "{root}/recipe.yaml/out"), [], ["output_dir {root}/recipe.yaml/out (line 14", "cannot be created because {root}/recipe.yaml is a file"] },
        { "nvme dir on a missing disk", BaseRecipe, ["offload.nvme_dir=/mnt/finetune-missing-disk/swap"], ["offload.nvme_dir /mnt/finetune-missing-disk/swap", "does not exist"] },
        { "nvme budget above free space", BaseRecipe, ["offload.nvme_dir={root}", "offload.nvme_gb=100000000"], ["offload.nvme_gb 100000000 (the override offload.nvme_gb=100000000)", "is more than the", "GiB free in offload.nvme_dir {root}"] },
        { "nvme tier without nvme dir", BaseRecipe, ["offload.optimizer_states=nvme"], ["offload.optimizer_states is nvme", "offload.nvme_dir is not set"] },
        { "override without equals", BaseRecipe, ["training.batch_size"], ["Override 'training.batch_size' has no '='"] },
        { "override of an unknown key", BaseRecipe, ["trainig.seed=1"], ["names no recipe key trainig.seed; the closest valid key is training.seed."] },
        { "override without value", BaseRecipe, ["training.seed="], ["Override training.seed= has no value"] },
        { "override with broken YAML", BaseRecipe, ["optimizer.betas=[0.9,"], ["The value of override optimizer.betas is not valid YAML"] },
        { "override null on a required field", BaseRecipe, ["training.batch_size=null"], ["training.batch_size on the override training.batch_size=null is null but must be an integer ≥ 1"] },
        { "override with a malformed key", BaseRecipe, ["training..seed=1"], ["Override key 'training..seed' is not a dotted recipe path"] },
        { "tab-indented YAML", "training:\n\tseed: 1\n", [], ["is not valid YAML at line 1", "invalid tab as indentation"] },
        { "duplicate key", BaseRecipe + "training:\n  seed: 2\n", [], ["is not valid YAML at line 15", "Duplicate key training"] },
        { "dataset file not given", BaseRecipe, ["dataset.format=alpaca"], ["dataset.format is alpaca", "dataset.path is not set"] },
        { "dataset file missing", BaseRecipe, ["dataset.format=alpaca", "dataset.path={root}/none.json"], ["dataset.path {root}/none.json", "does not exist"] },
        { "fp16 on cpu", BaseRecipe, ["training.precision=fp16"], ["training.precision fp16", "needs a GPU"] },
        { "integer beyond int range", BaseRecipe, ["dataset.seq_len=99999999999"], ["dataset.seq_len is 99999999999", "must be at most 2147483647"] },
        { "evaluation with nothing to evaluate", BaseRecipe, ["eval.every_steps=10"], ["eval.every_steps is set", "set eval.fraction"] },
        { "unknown command-line option", BaseRecipe, ["--frobnicate"], ["--frobnicate"] },
    };

    [Theory]
    [MemberData(nameof(MalformedCases))]
    public void MalformedInputExitsWithCodeTwoAndOneSentence(string name, string recipe, string[] arguments, string[] phrases)
    {
        string recipePath = Path.Combine(_root, "recipe.yaml");
        File.WriteAllText(recipePath, recipe.Replace("{root}", _root));
        var (exitCode, output, error) = CliRunner.Run(["validate", recipePath, .. arguments.Select(a => a.Replace("{root}", _root))]);
        Assert.True(exitCode == 2, $"{name}: exit code {exitCode}, stderr: {error}");
        Assert.Equal("", output);
        Assert.StartsWith("error: ", error);
        Assert.DoesNotContain("   at ", error);
        Assert.Single(error.TrimEnd('\n').Split('\n'));
        foreach (string phrase in phrases)
            Assert.Contains(phrase.Replace("{root}", _root), error);
    }

    [Fact]
    public void AtLeastTwentyMalformedCases() => Assert.True(MalformedCases().Count() >= 20);

    [Fact]
    public void MissingRecipeFileAndMissingArgumentAreUserErrors()
    {
        var (exitCode, _, error) = CliRunner.Run("validate", Path.Combine(_root, "none.yaml"));
        Assert.Equal(2, exitCode);
        Assert.Contains($"Recipe file {_root}/none.yaml does not exist", error);
        (exitCode, _, error) = CliRunner.Run("validate");
        Assert.Equal(2, exitCode);
        Assert.Contains("Give the recipe to validate", error);
    }

    [Fact]
    public void ValidRecipePrintsTheResolvedRecipeThatValidatesAgainUnchanged()
    {
        string recipePath = Path.Combine(_root, "recipe.yaml");
        File.WriteAllText(recipePath, BaseRecipe.Replace("{root}", _root));
        var (exitCode, output, error) = CliRunner.Run("validate", recipePath, "training.batch_size=8", "optimizer.betas=[0.9, 0.95]");
        Assert.Equal((0, ""), (exitCode, error));
        Assert.StartsWith($"# {recipePath}: valid; resolved recipe:\n", output);
        Assert.Contains("training:\n  seed: 42\n  batch_size: 8\n", output);
        Assert.Contains("  betas: [0.9, 0.95]\n", output);
        Assert.Contains("    num_key_value_heads: null\n", output);

        string resolvedPath = Path.Combine(_root, "resolved.yaml");
        File.WriteAllText(resolvedPath, output);
        var again = CliRunner.Run("validate", resolvedPath);
        Assert.Equal(0, again.ExitCode);
        Assert.Equal(output.Split('\n', 2)[1], again.Out.Split('\n', 2)[1]);
    }

    [Fact]
    public void ShippedRecipesValidateWithPlaceholdersAllowed()
    {
        foreach (string recipe in Directory.GetFiles(Path.Combine(CliRunner.RepositoryRoot(), "recipes"), "*.yaml"))
        {
            var (exitCode, output, error) = CliRunner.Run("validate", recipe, "--allow-missing-inputs", $"output_dir={_root}/out", $"offload.nvme_dir={_root}/out/swap");
            Assert.True(exitCode == 0, $"{recipe}: {error}");
            Assert.Contains("(missing inputs allowed)", output);
        }
        var strict = CliRunner.Run("validate", Path.Combine(CliRunner.RepositoryRoot(), "recipes", "llama3.2-1b.yaml"));
        Assert.Equal(2, strict.ExitCode);
        Assert.Contains("model.path", strict.Error);
    }

    [Fact]
    public void ReferenceOptionPrintsTheCommittedDocument()
    {
        var (exitCode, output, _) = CliRunner.Run("validate", "--reference");
        Assert.Equal(0, exitCode);
        Assert.Equal(File.ReadAllText(Path.Combine(CliRunner.RepositoryRoot(), "docs", "recipes.md")), output);
    }
}
