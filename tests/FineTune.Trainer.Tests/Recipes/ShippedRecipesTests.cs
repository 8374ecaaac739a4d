using FineTune.Trainer.Recipes;
using Xunit;

namespace FineTune.Trainer.Tests.Recipes;

/// <summary>
/// Every recipe in recipes/ loads and validates: with its placeholders allowed, and with model.path pointing at a
/// folder holding the real model's config.json shape (numbers from the models' published config.json files),
/// so sequence-length and budget checks run against the real sizes. docs/recipes.md matches the schema.
/// </summary>
public sealed class ShippedRecipesTests : IDisposable
{
    private readonly RecipeTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private static string[] RecipeNames() =>
        Directory.GetFiles(Path.Combine(RecipeTestFiles.RepositoryRoot(), "recipes"), "*.yaml").Select(Path.GetFileName).Order().ToArray()!;

    public static TheoryData<string> RecipeFiles() => new(RecipeNames());

    [Fact]
    public void AllSevenRecipesShip() =>
        Assert.Equal(["alpaca.yaml", "llama3.2-1b.yaml", "lora.yaml", "quickstart.yaml", "qwen2.5-0.5b.yaml", "scaling.yaml", "tinyllama-1.1b.yaml"], RecipeNames());

    [Theory]
    [MemberData(nameof(RecipeFiles))]
    public void ValidatesWithRealModelShapes(string name)
    {
        string path = Path.Combine(RecipeTestFiles.RepositoryRoot(), "recipes", name);
        string text = File.ReadAllText(path);
        Assert.StartsWith("# ", text);
        Assert.Contains($"./finetune run recipes/{name}", text);

        Recipe placeholders = Recipe.Load(path, options: new RecipeLoadOptions { Validate = false });
        var overrides = new List<string> { $"output_dir={_files.Root}/out" };
        // the GPU recipes say training.device: cuda, which validate now refuses where no GPU is visible
        if (placeholders.Training.Device == ComputeDevice.Cuda && !FineTune.Torch.Cuda.IsAvailable)
            overrides.Add("training.device=cpu");
        if (placeholders.Model.Path is not null)
            overrides.Add("model.path=" + name switch
            {
                "llama3.2-1b.yaml" => _files.ModelFolder("llama", 128256, 2048, 8192, 16, 32, 8, 131072, tied: true),
                "qwen2.5-0.5b.yaml" => _files.ModelFolder("qwen", 151936, 896, 4864, 24, 14, 2, 32768, tied: true),
                _ => _files.ModelFolder("tinyllama", 32000, 2048, 5632, 22, 32, 4, 2048, tied: false),
            });
        if (placeholders.Offload.NvmeDir is not null)
            overrides.Add($"offload.nvme_dir={_files.Root}/out/swap"); // inside output_dir, as in the recipe
        if (placeholders.Dataset.Format != DatasetFormat.Synthetic)
            overrides.Add("dataset.path=" + _files.File("data.jsonl", "{}\n"));
        Recipe recipe = Recipe.Load(path, overrides);
        Assert.Equal(recipe.ToYaml(), Recipe.Parse(recipe.ToYaml(), "resolved").ToYaml());
    }

    [Fact]
    public void QuickstartSwapsStatesAndActivationsToDiskWithASmallHostBudget()
    {
        string path = Path.Combine(RecipeTestFiles.RepositoryRoot(), "recipes", "quickstart.yaml");
        Recipe recipe = Recipe.Load(path, [$"output_dir={_files.Root}/q", $"offload.nvme_dir={_files.Root}/q/swap"]);
        Assert.Equal((StorageTier.Nvme, StorageTier.Nvme), (recipe.Offload.OptimizerStates, recipe.Offload.Activations));
        Assert.Equal(TokenizerKind.Byte, recipe.Tokenizer.Kind);
        Assert.Equal(DatasetFormat.Synthetic, recipe.Dataset.Format);
        Assert.NotNull(recipe.Model.Config);
        Assert.True(recipe.Offload.HostGb <= 2);
        Assert.Contains("nvme_dir: ./runs/quickstart/swap", File.ReadAllText(path));
    }

    [Fact]
    public void ReferenceDocumentMatchesTheSchema() =>
        Assert.Equal(RecipeReference.Markdown(), File.ReadAllText(Path.Combine(RecipeTestFiles.RepositoryRoot(), "docs", "recipes.md")));

    [Fact]
    public void ParameterCountsMatchPublishedModelSizes()
    {
        // Published totals: Llama-3.2-1B 1,235,814,400; TinyLlama-1.1B 1,100,048,384 (HF model cards / safetensors metadata).
        var llama = ModelShape.FromConfigJson(Path.Combine(_files.ModelFolder("l", 128256, 2048, 8192, 16, 32, 8, 131072, true), "config.json"));
        Assert.Equal(1_235_814_400L, llama.ParameterCount);
        var tiny = ModelShape.FromConfigJson(Path.Combine(_files.ModelFolder("t", 32000, 2048, 5632, 22, 32, 4, 2048, false), "config.json"));
        Assert.Equal(1_100_048_384L, tiny.ParameterCount);
    }
}
