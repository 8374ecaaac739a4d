using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using Xunit;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// The PEFT adapter folder FineTune writes, checked by an independent reader (<see cref="IndependentSafetensors"/>,
/// System.Text.Json) against PEFT's conventions: tensor names as get_peft_model_state_dict returns them for a
/// LlamaForCausalLM (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight (r, in), lora_B (out, r)),
/// modules_to_save weights under base_model.model.&lt;HF name&gt;, {"format": "pt"} metadata, and adapter_config.json
/// with PEFT's LoraConfig fields; the reader's round trip; and the one-sentence refusals of adapters FineTune
/// cannot compute exactly.
/// </summary>
public sealed class PeftAdapterFormatTests
{
    // llama_bias_llama3: hidden 32, 4 heads of head_dim 16 (q width 64), 2 KV heads (kv width 32), intermediate 48.
    private static readonly (string Parent, string Projection, int In, int Out)[] s_projections =
    [
        ("self_attn", "q_proj", 32, 64), ("self_attn", "k_proj", 32, 32), ("self_attn", "v_proj", 32, 32), ("self_attn", "o_proj", 64, 32),
        ("mlp", "gate_proj", 32, 48), ("mlp", "up_proj", 32, 48), ("mlp", "down_proj", 48, 32),
    ];

    [Fact]
    public void WrittenFolderHasPeftTensorNamesShapesMetadataAndConfig()
    {
        using var scratch = new ScratchFolder();
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3), DType.Float32, Device.Cpu);
        var config = new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1, TargetModules = ["all-linear"], Trainable = ["input_layernorm", "norm"] };
        using var adapters = LoraAdapters.Create(model, config, seed: 1);
        LoraAdapterTests.RandomizeB(adapters);
        PeftAdapterWriter.Write(adapters, model, scratch.Path, "meta-llama/Llama-3.2-1B");

        var file = IndependentSafetensors.Read(Path.Combine(scratch.Path, "adapter_model.safetensors"));
        var expected = new Dictionary<string, long[]>(StringComparer.Ordinal);
        for (int layer = 0; layer < 2; layer++)
        {
            foreach (var (parent, projection, inFeatures, outFeatures) in s_projections)
            {
                expected[$"base_model.model.model.layers.{layer}.{parent}.{projection}.lora_A.weight"] = [4, inFeatures];
                expected[$"base_model.model.model.layers.{layer}.{parent}.{projection}.lora_B.weight"] = [outFeatures, 4];
            }
            expected[$"base_model.model.model.layers.{layer}.input_layernorm.weight"] = [32];
        }
        expected["base_model.model.model.norm.weight"] = [32];
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), file.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, shape) in expected)
        {
            Assert.Equal("F32", file.Tensors[name].DType);
            Assert.Equal(shape, file.Tensors[name].Shape);
        }
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt" }, file.Metadata);
        var extents = file.Tensors.Values.OrderBy(t => t.Begin).ToArray();
        Assert.Equal(0, extents[0].Begin);
        for (int i = 1; i < extents.Length; i++)
            Assert.Equal(extents[i - 1].End, extents[i].Begin);
        Assert.Equal(file.DataByteCount, extents[^1].End);
        LoraAdapter q1 = adapters.Adapters.Single(a => a.Layer == 1 && a.Module == "q_proj");
        Assert.Equal(q1.B.Tensor.ToArray<float>(), file.Floats("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"));
        Assert.Equal(model.FinalNorm.Weight.Tensor.ToArray<float>(), file.Floats("base_model.model.model.norm.weight"));

        string configText = File.ReadAllText(Path.Combine(scratch.Path, "adapter_config.json"));
        JsonObject json = JsonNode.Parse(configText)!.AsObject();
        Assert.Equal(json.Select(p => p.Key).Order(StringComparer.Ordinal), json.Select(p => p.Key)); // sort_keys, as PEFT
        Assert.Equal("LORA", (string?)json["peft_type"]);
        Assert.Equal("CAUSAL_LM", (string?)json["task_type"]);
        Assert.Equal(4, (int)json["r"]!);
        Assert.Equal(8.0, (double)json["lora_alpha"]!);
        Assert.Equal(0.1, (double)json["lora_dropout"]!);
        Assert.Equal("none", (string?)json["bias"]);
        Assert.Equal("meta-llama/Llama-3.2-1B", (string?)json["base_model_name_or_path"]);
        Assert.False((bool)json["fan_in_fan_out"]!);
        Assert.False((bool)json["use_dora"]!);
        Assert.False((bool)json["use_rslora"]!);
        Assert.True((bool)json["inference_mode"]!);
        Assert.Equal(s_projections.Select(p => p.Projection).Order(), json["target_modules"]!.AsArray().Select(n => (string)n!).Order());
        Assert.Equal(["input_layernorm", "model.norm"], json["modules_to_save"]!.AsArray().Select(n => (string)n!));
        Assert.Empty(json["rank_pattern"]!.AsObject());
        Assert.Empty(json["alpha_pattern"]!.AsObject());
    }

    [Fact]
    public void ReadingBackAWrittenFolderGivesTheSameAdaptersAndExtras()
    {
        using var scratch = new ScratchFolder();
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        var config = new LoraConfig { Rank = 2, Alpha = 5, TargetModules = ["v_proj", "q_proj", "down_proj"], Trainable = ["post_attention_layernorm"] };
        using var written = LoraAdapters.Create(model, config, seed: 9);
        LoraAdapterTests.RandomizeB(written);
        using (FineTune.Torch.Torch.NoGrad())
            model.Layers[1].Parameters.Single(p => p.Name.EndsWith("post_attention_layernorm.weight", StringComparison.Ordinal)).Tensor.MulInPlace(1.5);
        PeftAdapterWriter.Write(written, model, scratch.Path, null);

        using var fresh = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.GqaTied), DType.Float32, Device.Cpu);
        using LoraAdapters read = PeftAdapterReader.Load(scratch.Path, fresh);
        Assert.Equal(config, read.Config);
        Assert.Equal(["q_proj", "v_proj", "down_proj"], read.Config.Targets);
        Assert.Equal(written.Parameters.Select(p => p.Name), read.Parameters.Select(p => p.Name));
        Assert.All(written.Parameters.Zip(read.Parameters), pair => Assert.True(pair.First.Tensor.ValueEquals(pair.Second.Tensor), pair.First.Name));
        Assert.All(model.Parameters.Zip(fresh.Parameters), pair => Assert.True(pair.First.Tensor.ValueEquals(pair.Second.Tensor), pair.First.Name));
        Assert.Throws<UserErrorException>(() => PeftAdapterWriter.Write(written, model, scratch.Path, null));
    }

    [Theory]
    [InlineData("peft_type", "\"IA3\"", "peft_type is IA3")]
    [InlineData("use_dora", "true", "DoRA")]
    [InlineData("use_rslora", "true", "sqrt(r)")]
    [InlineData("bias", "\"lora_only\"", "bias is lora_only")]
    [InlineData("target_modules", "\".*(q|v)_proj\"", "regular expression")]
    [InlineData("target_modules", "[\"q_proj\", \"embed_tokens\"]", "target module embed_tokens")]
    [InlineData("rank_pattern", "{\"q_proj\": 8}", "rank_pattern")]
    [InlineData("layers_to_transform", "0", "layers_to_transform")]
    [InlineData("r", "8", "has shape [4, 32] but this base model and r imply [8, 32]")]
    [InlineData("modules_to_save", "[\"input_layernorm\"]", "model.layers.0.input_layernorm.weight [32] is missing")]
    public void AdaptersFineTuneCannotComputeExactlyAreRefusedWithOneSentence(string field, string jsonValue, string expected)
    {
        var reference = LoraReferenceData.For(LoraReferenceData.GqaTied);
        using var scratch = ScratchFolder.CopyOf(reference.AdapterFolder);
        string configPath = Path.Combine(scratch.Path, "adapter_config.json");
        JsonObject json = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        json[field] = JsonNode.Parse(jsonValue);
        File.WriteAllText(configPath, json.ToJsonString());

        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        var error = Assert.Throws<UserErrorException>(() => PeftAdapterReader.Load(scratch.Path, model));
        Assert.Contains(expected, error.Message);
        Assert.EndsWith(".", error.Message);
        Assert.DoesNotContain('\n', error.Message);
    }

    [Fact]
    public void MissingUnexpectedOrMisshapenTensorsAreNamed()
    {
        var reference = LoraReferenceData.For(LoraReferenceData.GqaTied);
        using var scope = TensorScope.Enter();
        using var model = LlamaModel.Load(reference.BaseFolder, DType.Float32, Device.Cpu);
        using var otherBase = LlamaModel.Load(ModelFixtures.Folder(ModelFixtures.BiasLlama3), DType.Float32, Device.Cpu);
        Assert.Contains("has shape", Assert.Throws<UserErrorException>(() => PeftAdapterReader.Load(reference.AdapterFolder, otherBase)).Message);

        string dropped = "base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight";
        using (var scratch = RewriteTensors(reference.AdapterFolder, (name, _) => name != dropped))
            Assert.Contains($"tensor {dropped} [16, 4] is missing", Assert.Throws<UserErrorException>(() => PeftAdapterReader.Load(scratch.Path, model)).Message);
        using (var scratch = RewriteTensors(reference.AdapterFolder, (_, _) => true, extra: "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"))
            Assert.Contains("unexpected tensor base_model.model.model.layers.0.mlp.up_proj.lora_A.weight", Assert.Throws<UserErrorException>(() => PeftAdapterReader.Load(scratch.Path, model)).Message);
        using (var empty = new ScratchFolder())
            Assert.Contains("holds no adapter_config.json", Assert.Throws<UserErrorException>(() => PeftAdapterReader.Load(empty.Path, model)).Message);
    }

    /// <summary>A copy of an adapter folder whose safetensors keeps the tensors <paramref name="keep"/> accepts, plus one zero tensor named <paramref name="extra"/>.</summary>
    private static ScratchFolder RewriteTensors(string folder, Func<string, long[], bool> keep, string? extra = null)
    {
        var scratch = ScratchFolder.CopyOf(folder);
        var source = IndependentSafetensors.Read(Path.Combine(folder, "adapter_model.safetensors"));
        var writer = new SafetensorsWriter();
        foreach (var (name, (_, shape, _, _)) in source.Tensors.Where(t => keep(t.Key, t.Value.Shape)))
            writer.Add(name, SafetensorsDType.F32, shape, source.Floats(name).SelectMany(BitConverter.GetBytes).ToArray());
        if (extra is not null)
            writer.Add(extra, SafetensorsDType.F32, [4, 32], new byte[4 * 32 * 4]);
        writer.WriteFile(Path.Combine(scratch.Path, "adapter_model.safetensors"));
        return scratch;
    }
}
