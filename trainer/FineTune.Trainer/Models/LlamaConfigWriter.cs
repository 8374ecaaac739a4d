using System.Text.Json;
using System.Text.Json.Nodes;
using FineTune.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Writes config.json for an exported model. A config read from a folder is written back as it was (every field
/// transformers wrote, including those FineTune ignores) with only torch_dtype updated; a config built in code is
/// written in full, with the same field names and meanings <see cref="LlamaConfigReader"/> reads.
/// </summary>
public static class LlamaConfigWriter
{
    private static readonly JsonSerializerOptions s_indented = new() { WriteIndented = true };

    public static JsonObject ToJson(LlamaConfig config, DType dtype)
    {
        string dtypeName = dtype.Name();
        if (config.Source is not null)
        {
            var copy = (JsonObject)config.Source.DeepClone();
            copy["torch_dtype"] = dtypeName;
            if (copy.ContainsKey("dtype"))
                copy["dtype"] = dtypeName;
            return copy;
        }
        var json = new JsonObject
        {
            ["architectures"] = new JsonArray(Architecture(config.ModelType)),
            ["model_type"] = config.ModelType,
            ["vocab_size"] = config.VocabSize,
            ["hidden_size"] = config.HiddenSize,
            ["intermediate_size"] = config.IntermediateSize,
            ["num_hidden_layers"] = config.LayerCount,
            ["num_attention_heads"] = config.HeadCount,
            ["num_key_value_heads"] = config.KvHeadCount,
            ["head_dim"] = config.HeadDim,
            ["hidden_act"] = "silu",
            ["max_position_embeddings"] = config.MaxPositionEmbeddings,
            ["initializer_range"] = config.InitializerRange,
            ["rms_norm_eps"] = config.RmsNormEps,
            ["rope_theta"] = config.RopeTheta,
            ["rope_scaling"] = RopeScalingJson(config.RopeScaling),
            ["tie_word_embeddings"] = config.TieWordEmbeddings,
            ["attention_dropout"] = 0.0,
            ["bos_token_id"] = config.BosTokenId,
            ["eos_token_id"] = config.EosTokenIds.Count == 1 ? JsonValue.Create(config.EosTokenIds[0])
                : config.EosTokenIds.Count == 0 ? null : new JsonArray(config.EosTokenIds.Select(id => (JsonNode?)id).ToArray()),
            ["pad_token_id"] = config.PadTokenId,
            ["torch_dtype"] = dtypeName,
        };
        if (config.ModelType == "llama")
        {
            json["attention_bias"] = config.AttentionBias;
            json["mlp_bias"] = config.MlpBias;
        }
        if (config.ModelType == "mistral")
            json["sliding_window"] = config.SlidingWindow;
        if (config.ModelType == "qwen2")
        {
            json["use_sliding_window"] = config.SlidingWindow is not null;
            json["sliding_window"] = config.SlidingWindow;
        }
        return json;
    }

    public static void Write(LlamaConfig config, DType dtype, string path) =>
        File.WriteAllText(path, ToJson(config, dtype).ToJsonString(s_indented) + "\n");

    private static string Architecture(string modelType) => modelType switch
    {
        "mistral" => "MistralForCausalLM",
        "qwen2" => "Qwen2ForCausalLM",
        _ => "LlamaForCausalLM",
    };

    private static JsonObject? RopeScalingJson(RopeScaling scaling) => scaling.Kind switch
    {
        RopeScalingKind.Default => null,
        RopeScalingKind.Linear => new JsonObject { ["rope_type"] = "linear", ["factor"] = scaling.Factor },
        _ => new JsonObject
        {
            ["rope_type"] = "llama3",
            ["factor"] = scaling.Factor,
            ["low_freq_factor"] = scaling.LowFreqFactor,
            ["high_freq_factor"] = scaling.HighFreqFactor,
            ["original_max_position_embeddings"] = scaling.OriginalMaxPositionEmbeddings,
        },
    };
}
