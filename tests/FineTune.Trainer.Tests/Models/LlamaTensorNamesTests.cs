using Xunit;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Tests.Models;

/// <summary>The HF name/shape table against the fixtures' tensors and the completeness check's messages.</summary>
public sealed class LlamaTensorNamesTests
{
    [Fact]
    public void TiedModelHasNoLmHeadAndCountsMatchTheFixture()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.GqaTied));
        IReadOnlyList<ParameterSpec> all = LlamaTensorNames.All(config);
        Assert.Equal(LlamaTensorNames.Embedding, all[0].Name);
        Assert.Equal(LlamaTensorNames.FinalNorm, all[^1].Name);
        Assert.DoesNotContain(all, s => s.Name == LlamaTensorNames.LmHead);
        // 128*32 embedding + 2 layers * (32 + 1024 + 512 + 512 + 1024 + 32 + 3*2048) + 32 final norm.
        Assert.Equal(128 * 32 + 2 * (32 + 1024 + 512 + 512 + 1024 + 32 + 3 * 2048) + 32, all.Sum(s => s.ElementCount));
    }

    [Fact]
    public void BiasModelListsQkvoBiasesAndLmHead()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.BiasLlama3));
        var byName = LlamaTensorNames.All(config).ToDictionary(s => s.Name, s => s.Shape);
        Assert.Equal([64L, 32], byName["model.layers.1.self_attn.q_proj.weight"]);
        Assert.Equal([32L, 64], byName["model.layers.1.self_attn.o_proj.weight"]);
        Assert.Equal([32L], byName["model.layers.0.self_attn.k_proj.bias"]);
        Assert.Equal([32L], byName["model.layers.0.self_attn.o_proj.bias"]);
        Assert.Equal([96L, 32], byName[LlamaTensorNames.LmHead]);
        Assert.Equal(2 * 13 + 3, byName.Count); // per layer: 2 norms, q/k/v/o weights and biases, 3 MLP weights
    }

    [Fact]
    public void CheckCompleteNamesTheFirstProblem()
    {
        LlamaConfig config = LlamaConfigReader.ReadFolder(ModelFixtures.Folder(ModelFixtures.GqaTied));
        Dictionary<string, (long[] Shape, string File)> Found() =>
            LlamaTensorNames.All(config).ToDictionary(s => s.Name, s => (s.Shape, "model.safetensors"));

        LlamaTensorNames.CheckComplete(config, Found(), "dir");

        var missing = Found();
        missing.Remove("model.layers.1.mlp.up_proj.weight");
        Assert.Contains("model.layers.1.mlp.up_proj.weight", Assert.Throws<UserErrorException>(() => LlamaTensorNames.CheckComplete(config, missing, "dir")).Message);

        var wrongShape = Found();
        wrongShape["model.layers.0.self_attn.k_proj.weight"] = ([32, 32], "model.safetensors");
        string message = Assert.Throws<UserErrorException>(() => LlamaTensorNames.CheckComplete(config, wrongShape, "dir")).Message;
        Assert.Contains("model.layers.0.self_attn.k_proj.weight has shape [32, 32]", message);
        Assert.Contains("[16, 32]", message);

        var extra = Found();
        extra["model.layers.2.input_layernorm.weight"] = ([32], "model.safetensors");
        extra["model.layers.0.self_attn.rotary_emb.inv_freq"] = ([4], "model.safetensors");
        extra[LlamaTensorNames.LmHead] = ([128, 32], "model.safetensors");
        Assert.Contains("unexpected tensor model.layers.2.input_layernorm.weight",
            Assert.Throws<UserErrorException>(() => LlamaTensorNames.CheckComplete(config, extra, "dir")).Message);
    }
}
