using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Runs;
using Xunit;

namespace FineTune.Trainer.Tests.Recipes;

/// <summary>
/// model.adapter and model.lora: binding (lists or comma-separated names, all-linear), the one-sentence errors,
/// the round trip through the resolved YAML and recipes/lora.yaml's values (runs: Run/LoraRunTests).
/// </summary>
public sealed class LoraRecipeTests : IDisposable
{
    private readonly RecipeTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private string Tiny(string model = "") => $"""
        model:
          config:
            vocab_size: 300
            hidden_size: 64
            intermediate_size: 176
            num_hidden_layers: 2
            num_attention_heads: 4
        {model}
        dataset:
          format: synthetic
          seq_len: 64
        output_dir: {_files.Root}/out
        """;

    private static string Error(Action action) => Assert.Throws<UserErrorException>(action).Message;

    [Fact]
    public void ShippedLoraRecipeBindsItsAdapterSection()
    {
        string path = Path.Combine(RecipeTestFiles.RepositoryRoot(), "recipes", "lora.yaml");
        Recipe recipe = Recipe.Load(path, options: new RecipeLoadOptions { Validate = false });
        Assert.Equal(AdapterKind.Lora, recipe.Model.Adapter);
        LoraConfig config = LoraSetup.ConfigOf(recipe)!;
        Assert.Equal(new LoraConfig
        {
            Rank = 16, Alpha = 32, Dropout = 0.05, TargetModules = ["q_proj", "k_proj", "v_proj", "o_proj"],
            Trainable = ["input_layernorm", "post_attention_layernorm", "norm"],
        }, config);
        Assert.Equal(2.0, config.Scale);
        Assert.Null(recipe.Model.Lora.Path);
    }

    [Fact]
    public void DefaultsAreNoAdapterAndTheAttentionProjections()
    {
        Recipe recipe = Recipe.Parse(Tiny(), "tiny.yaml");
        Assert.Equal(AdapterKind.None, recipe.Model.Adapter);
        Assert.Null(LoraSetup.ConfigOf(recipe));
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj"], recipe.Model.Lora.TargetModules);
        Assert.Empty(recipe.Model.Lora.Trainable);
        Assert.Equal((8, 16.0, 0.0), (recipe.Model.Lora.Rank, recipe.Model.Lora.Alpha, recipe.Model.Lora.Dropout));
    }

    [Fact]
    public void TargetsBindFromAListACommaStringOrAllLinearAndRoundTrip()
    {
        Recipe list = Recipe.Parse(Tiny("  adapter: lora\n  lora:\n    target_modules: [v_proj, q_proj]\n"), "tiny.yaml");
        Assert.Equal(["v_proj", "q_proj"], list.Model.Lora.TargetModules);
        Assert.Equal(["q_proj", "v_proj"], LoraSetup.ConfigOf(list)!.Targets);

        Recipe overridden = Recipe.Parse(Tiny(), "tiny.yaml", ["model.adapter=lora", "model.lora.target_modules=q_proj,down_proj", "model.lora.trainable=[norm]"]);
        Assert.Equal(["q_proj", "down_proj"], overridden.Model.Lora.TargetModules);
        Assert.Equal(["norm"], overridden.Model.Lora.Trainable);

        Recipe all = Recipe.Parse(Tiny(), "tiny.yaml", ["model.adapter=lora", "model.lora.target_modules=all-linear"]);
        Assert.Equal(LoraTargets.Modules, LoraSetup.ConfigOf(all)!.Targets);

        string yaml = overridden.ToYaml();
        Assert.Contains("    target_modules: [q_proj, down_proj]\n", yaml);
        Assert.Contains("    trainable: [norm]\n", yaml);
        Assert.Equal(yaml, Recipe.Parse(yaml, "resolved").ToYaml());
        Assert.Contains(overridden.HParams(), p => p.Key == "model.lora.target_modules" && (string)p.Value == "q_proj,down_proj");
    }

    [Fact]
    public void BadAdapterKeysAreOneSentenceNamingTheKey()
    {
        Assert.Contains("model.lora.target_modules on the override model.lora.target_modules=[q_proj, qproj] lists 'qproj' but must be a list of names from q_proj",
            Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.target_modules=[q_proj, qproj]"])));
        Assert.Contains("(did you mean q_proj?)", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.target_modules=qproj"])));
        Assert.Contains("model.lora.target_modules is empty", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.target_modules=[]"])));
        Assert.Contains("model.lora.dropout is 1", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.dropout=1"])));
        Assert.Contains("model.lora.rank is 0", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.rank=0"])));
        Assert.Contains("model.lora.rank is set (line", Error(() => Recipe.Parse(Tiny("  lora:\n    rank: 4\n"), "t.yaml")));
        Assert.Contains("but model.adapter is none; add model.adapter=lora", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.lora.alpha=4"])));
        Assert.Contains("model.adapter on the override model.adapter=qlora is 'qlora' but must be one of none, lora",
            Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=qlora"])));
        Assert.Contains("holds no adapter_config.json", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", $"model.lora.path={_files.Root}"])));
        Assert.Contains("model.lora.trainable on the override", Error(() => Recipe.Parse(Tiny(), "t.yaml", ["model.adapter=lora", "model.lora.trainable=[q_proj]"])));
    }
}
