using FineTune.Trainer.Recipes;
using Xunit;

namespace FineTune.Trainer.Tests.Recipes;

/// <summary>{rank} in offload.nvme_dir: each data-parallel rank swaps to its own folder from the same recipe.</summary>
public sealed class RankPlaceholderTests : IDisposable
{
    private readonly RecipeTestFiles _files = new();

    public void Dispose() => _files.Dispose();

    private string Recipe() => $"""
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
        offload:
          nvme_dir: {_files.Root}/out/swap-{OffloadSection.RankPlaceholder}
        output_dir: {_files.Root}/out
        """;

    [Fact]
    public void EachRankGetsItsOwnFolderAndTheRecipeKeepsThePattern()
    {
        Recipe rank3 = FineTune.Trainer.Recipes.Recipe.Parse(Recipe(), "dp.yaml", options: new RecipeLoadOptions { Rank = 3 });
        Assert.Equal($"{_files.Root}/out/swap-3", rank3.Offload.NvmeDir);
        Assert.Equal($"{_files.Root}/out/swap-{{rank}}", rank3.Offload.NvmeDirPattern);
        // What a checkpoint stores is the pattern, so a resume with another rank count still gives each its folder.
        Assert.Contains("swap-{rank}", rank3.ToYaml());
        Recipe single = FineTune.Trainer.Recipes.Recipe.Parse(Recipe(), "dp.yaml");
        Assert.Equal($"{_files.Root}/out/swap-0", single.Offload.NvmeDir);
    }
}
