using FineTune.Trainer.Recipes;
using Xunit;

namespace FineTune.Trainer.Tests.Recipes;

/// <summary>Binding, defaults, overrides, error sentences and the YAML round trip.</summary>
public sealed class RecipeLoadingTests : IDisposable
{
    private readonly RecipeTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private string Tiny(string extra = "") => $"""
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
        output_dir: {_files.Root}/out
        {extra}
        """;

    private static string Error(Action action) => Assert.Throws<UserErrorException>(action).Message;

    [Fact]
    public void UnwrittenKeysTakeTheSchemaDefaults()
    {
        Recipe recipe = Recipe.Parse(Tiny(), "tiny.yaml");
        Assert.Equal(1, recipe.Training.BatchSize);
        Assert.Equal(42, recipe.Training.Seed);
        Assert.Equal(Precision.Bf16, recipe.Training.Precision);
        Assert.Equal((0.9, 0.999), (recipe.Optimizer.Beta1, recipe.Optimizer.Beta2));
        Assert.Equal(0.01, recipe.Optimizer.WeightDecay);
        Assert.Equal(4, recipe.Model.Config!.NumKeyValueHeads); // null -> num_attention_heads
        Assert.Equal(TokenizerKind.Byte, recipe.Tokenizer.Kind); // auto without model.path
        Assert.Equal(Path.Combine(_files.Root, "out", "checkpoints"), recipe.Checkpoint.Dir);
        Assert.Equal(1e-6, recipe.Model.Config.RmsNormEps);
        Assert.Null(recipe.Model.Path);
    }

    [Fact]
    public void OverridesWinOverTheFileAndParseAsYaml()
    {
        Recipe recipe = Recipe.Parse(Tiny("training:\n  batch_size: 2\n"), "tiny.yaml",
            ["training.batch_size=8", "optimizer.betas=[0.9, 0.95]", "offload.io_engine=io_uring", "training.max_steps=1000",
             "training.clip_grad_norm=null", "dataset.packing=false", "optimizer.lr=3e-4", "model.config.num_key_value_heads=2"]);
        Assert.Equal(8, recipe.Training.BatchSize);
        Assert.Equal((0.9, 0.95), (recipe.Optimizer.Beta1, recipe.Optimizer.Beta2));
        Assert.Equal(IoEngine.IoUring, recipe.Offload.IoEngine);
        Assert.Equal(1000L, recipe.Training.MaxSteps);
        Assert.Null(recipe.Training.ClipGradNorm);
        Assert.False(recipe.Dataset.Packing);
        Assert.Equal(3e-4, recipe.Optimizer.Lr);
        Assert.Equal(2, recipe.Model.Config!.NumKeyValueHeads);
    }

    [Fact]
    public void OverrideCanCreateAndRemoveTheConfigSection()
    {
        string model = _files.ModelFolder("m", 300, 64, 176, 2, 4, 4, 128, false);
        Recipe fromFolder = Recipe.Parse(Tiny(), "tiny.yaml", ["model.config=null", $"model.path={model}"]);
        Assert.Null(fromFolder.Model.Config);
        Assert.Equal(TokenizerKind.Hf, fromFolder.Tokenizer.Kind);
        Assert.Equal(model, fromFolder.Tokenizer.Path);
        Assert.DoesNotContain("config:", fromFolder.ToYaml());

        Recipe created = Recipe.Parse($"dataset: {{format: synthetic, seq_len: 32}}\noutput_dir: {_files.Root}/o\n", "bare.yaml",
            ["model.config.hidden_size=32", "model.config.num_attention_heads=2", "model.config.vocab_size=256", "model.config.intermediate_size=64",
             "model.config.num_hidden_layers=1"]);
        Assert.Equal(32, created.Model.Config!.HiddenSize);
        Assert.Equal(2048, created.Model.Config.MaxPositionEmbeddings);
    }

    [Fact]
    public void ResolvedYamlLoadsBackToTheSameRecipe()
    {
        Recipe first = Recipe.Parse(Tiny(), "tiny.yaml",
            ["optimizer.lr=2.5e-05", "offload.host_gb=1.5", "training.seed=12345678901", "resume=latest", "eval.path=\"#odd: name\""],
            new RecipeLoadOptions { AllowMissingInputs = true });
        string yaml = first.ToYaml();
        Recipe second = Recipe.Parse(yaml, "resolved.yaml", options: new RecipeLoadOptions { AllowMissingInputs = true });
        Assert.Equal(yaml, second.ToYaml());
        Assert.Equal(2.5e-05, second.Optimizer.Lr);
        Assert.Equal(12345678901L, second.Training.Seed);
        Assert.Equal("#odd: name", second.Eval.Path);
        Assert.Contains("  lr: 2.5e-05\n", yaml);
        Assert.Contains("  host_gb: 1.5\n", yaml);
    }

    [Fact]
    public void UnknownKeyNamesItsLineAndTheClosestKey()
    {
        string message = Error(() => Recipe.Parse(Tiny("training:\n  batch_sise: 4\n"), "tiny.yaml"));
        Assert.Equal("Unknown recipe key training.batch_sise on line 14 of tiny.yaml; the closest valid key is training.batch_size.", message);
        Assert.Contains("closest valid key is optimizer.lr", Error(() => Recipe.Parse(Tiny("training:\n  lr: 4\n"), "tiny.yaml")));
        Assert.Contains("closest valid key is optimizer.lr", Error(() => Recipe.Parse(Tiny("optimizer:\n  learning_rate: 4\n"), "tiny.yaml")));
        Assert.Contains("closest valid key is training", Error(() => Recipe.Parse(Tiny("trainig:\n  seed: 4\n"), "tiny.yaml")));
    }

    [Fact]
    public void WrongTypeNamesTheLineAndTheExpectedType()
    {
        Assert.Equal("training.batch_size on line 14 of tiny.yaml is 'four' but must be an integer ≥ 1.",
            Error(() => Recipe.Parse(Tiny("training:\n  batch_size: four\n"), "tiny.yaml")));
        Assert.Contains("line 14 of tiny.yaml is '8' but must be an integer", Error(() => Recipe.Parse(Tiny("training:\n  batch_size: \"8\"\n"), "tiny.yaml")));
        Assert.Contains("must be true or false", Error(() => Recipe.Parse(Tiny("logging:\n  tensorboard: yes\n"), "tiny.yaml")));
        Assert.Contains("(did you mean bf16?)", Error(() => Recipe.Parse(Tiny("training:\n  precision: bf61\n"), "tiny.yaml")));
        Assert.Contains("section training on line 13 of tiny.yaml must be a mapping", Error(() => Recipe.Parse(Tiny("training: 5\n"), "tiny.yaml")));
    }

    [Fact]
    public void RangeErrorsNameTheValueAndTheLimit()
    {
        Assert.Equal("dataset.seq_len is -5 on the override dataset.seq_len=-5; it must be at least 1.",
            Error(() => Recipe.Parse(Tiny(), "tiny.yaml", ["dataset.seq_len=-5"])));
        Assert.Contains("it must be greater than 0", Error(() => Recipe.Parse(Tiny(), "tiny.yaml", ["optimizer.lr=0"])));
        Assert.Contains("it must be less than 1", Error(() => Recipe.Parse(Tiny(), "tiny.yaml", ["optimizer.betas=[0.9, 1.0]"])));
        Assert.Contains("must be at most 2147483647", Error(() => Recipe.Parse(Tiny(), "tiny.yaml", ["dataset.seq_len=99999999999"])));
    }

    [Fact]
    public void SemanticChecksGiveOneSentence()
    {
        Assert.Contains("exceeds the model's max_position_embeddings 128", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["dataset.seq_len=256"])));
        Assert.Contains("not divisible by num_attention_heads 4", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.config.hidden_size=66"])));
        Assert.Contains("not a multiple of num_key_value_heads 3", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.config.num_key_value_heads=3"])));
        Assert.Contains("names no model", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.config=null"])));
        Assert.Contains("fp16 (the override training.precision=fp16) needs a GPU", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["training.precision=fp16", "training.device=cpu"])));
        Assert.Contains("offload.nvme_dir is not set", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["offload.activations=nvme"])));
        Assert.Contains("ids 0-255", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.config.vocab_size=100"])));
    }

    [Fact]
    public void BudgetCheckCountsTheWeightsAndTheOptimizerStates()
    {
        // Tiny(): embed 300x64 + lm_head 300x64 + 2 layers x (2x64x64 + 2x64x64 + 3x64x176 + 2x64) + 64 = 139,072 parameters.
        // bf16 (the default): weights 2 + states 10 (residual masters) = 12 x 139,072 = 1,668,864 bytes = 0.00155 GiB; fp32:
        // 4 + 12 = 16 x 139,072 = 2,225,152 bytes = 0.00207 GiB; the optimizer states on an explicit tier 12 x 139,072 =
        // 0.00155 GiB; host staging of the 300x64 embedding needs 8 x 19,200 = 153,600 bytes.
        string tooSmall = Error(() => Recipe.Parse(Tiny(), "t.yaml", ["training.device=cpu", "offload.host_gb=0.0015"]));
        Assert.Contains("hold 0.0015 GiB", tooSmall);
        Assert.Contains("needs about 0.00155 GiB (12 bytes per parameter", tooSmall);
        Assert.Contains("139.07K-parameter", tooSmall);
        Recipe.Parse(Tiny(), "t.yaml", ["training.device=cpu", "offload.host_gb=0.0016"]);
        string fp32 = Error(() => Recipe.Parse(Tiny(), "t.yaml", ["training.device=cpu", "training.precision=fp32", "offload.host_gb=0.002"]));
        Assert.Contains("needs about 0.00207 GiB (16 bytes per parameter", fp32);
        Recipe.Parse(Tiny(), "t.yaml", ["training.device=cpu", "training.precision=fp32", "offload.host_gb=0.0022"]);
        Assert.Contains("cannot hold the 0.00155 GiB of fp32 master weights",
            Error(() => Recipe.Parse(Tiny(), "t.yaml", ["training.device=cpu", "offload.host_gb=0.0015", $"offload.nvme_dir={_files.Root}", "offload.optimizer_states=host"])));
    }

    [Fact]
    public void SyntaxErrorsAndDuplicatesAreUserErrors()
    {
        Assert.Contains("is not valid YAML at line", Error(() => Recipe.Parse("training:\n  batch_size: 4\n bad: [\n", "bad.yaml")));
        Assert.Contains("bad.yaml", Error(() => Recipe.Parse("training:\n  seed: 1\n  seed: 2\n", "bad.yaml")));
        Assert.Contains("must be a YAML mapping", Error(() => Recipe.Parse("- a\n- b\n", "list.yaml")));
        Assert.Contains("does not exist", Error(() => Recipe.Load(Path.Combine(_files.Root, "none.yaml"))));
    }

    [Fact]
    public void EveryChoiceOfEverySchemaFieldMapsToItsEnum()
    {
        string tokenizer = _files.ModelFolder("tok", 300, 64, 176, 2, 4, 4, 128, false);
        foreach (var field in RecipeSchema.Fields.Where(f => f.Kind == FieldKind.Choice))
            foreach (string choice in field.Choices)
            {
                // fp16 needs a GPU device and tier "device" needs a non-CPU device; use cuda so every choice is legal.
                // (validate refuses cuda where no GPU is visible unless inputs may be missing, as on this machine)
                Recipe recipe = Recipe.Parse(Tiny(), "t.yaml", ["training.device=cuda", $"offload.nvme_dir={_files.Root}", $"tokenizer.path={tokenizer}", $"dataset.path={tokenizer}/config.json", $"{field.Path}={choice}"],
                    new RecipeLoadOptions { AllowMissingInputs = !FineTune.Torch.Cuda.IsAvailable });
                Assert.Equal(choice, recipe.Values.String(field.Path));
                Assert.Contains($"{field.Name}: {choice}\n", recipe.ToYaml());
            }
    }

    [Fact]
    public void HParamsListEveryScalarField()
    {
        var hparams = Recipe.Parse(Tiny(), "t.yaml").HParams().ToDictionary(h => h.Key, h => h.Value);
        Assert.Equal(1.0, hparams["training.batch_size"]);
        Assert.Equal("bf16", hparams["training.precision"]);
        Assert.Equal(true, hparams["dataset.packing"]);
        Assert.Equal(0.999, hparams["optimizer.betas.1"]);
        Assert.False(hparams.ContainsKey("model.path"));
    }

    [Theory]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("flaw", "lawn", 2)]
    [InlineData("", "abc", 3)]
    [InlineData("Seed", "seed", 0)]
    public void LevenshteinDistance(string a, string b, int expected) => Assert.Equal(expected, RecipeKeySuggester.Distance(a, b));
}
