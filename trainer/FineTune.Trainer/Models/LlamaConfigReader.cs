using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Trainer.Models;

/// <summary>
/// Reads an HF config.json into a <see cref="LlamaConfig"/>: model_type llama, mistral and qwen2, each with its own
/// transformers defaults. The five shape fields (vocab_size, hidden_size, intermediate_size, num_hidden_layers,
/// num_attention_heads) are required even though transformers defaults them, because a 7B default silently applied
/// to another checkpoint only fails later with a confusing shape error. Keys FineTune does not model are kept (for
/// export) but ignored; options that would change the math and are not implemented are refused, naming the field.
/// reference: transformers configuration_llama.py, configuration_mistral.py, configuration_qwen2.py,
/// modeling_rope_utils.py (rope_scaling / rope_parameters, legacy key "type").
/// </summary>
public static class LlamaConfigReader
{
    public const string FileName = "config.json";

    private static readonly Dictionary<string, string> s_architectureByModelType = new()
    {
        ["llama"] = "LlamaForCausalLM",
        ["mistral"] = "MistralForCausalLM",
        ["qwen2"] = "Qwen2ForCausalLM",
    };

    /// <summary>Reads DIR/config.json.</summary>
    public static LlamaConfig ReadFolder(string folder) => ReadFile(Path.Combine(folder, FileName));

    public static LlamaConfig ReadFile(string path)
    {
        if (!File.Exists(path) && !Directory.Exists(path))
            throw new UserErrorException($"{path}: not found; the model folder needs an HF config.json.");
        byte[] bytes = IO.InputFile.ReadAllBytes(path, IO.InputFile.ConfigLimitByteCount, "config.json");
        return Parse(System.Text.Encoding.UTF8.GetString(bytes), path);
    }

    /// <summary>Parses config.json text; <paramref name="sourceName"/> is the path used in messages.</summary>
    public static LlamaConfig Parse(string json, string sourceName)
    {
        JsonNode? node;
        // the one strict rule (duplicate keys refused, file and key named) before the typed reads
        using (IO.StrictJson.Parse(System.Text.Encoding.UTF8.GetBytes(json), sourceName, "re-download the model's config.json"))
        {
        }
        try
        {
            node = JsonNode.Parse(json);
        }
        catch (Exception e) when (e is JsonException or ArgumentException or InvalidOperationException)
        {
            throw new UserErrorException($"{sourceName}: not valid JSON ({e.Message}).", e);
        }
        if (node is not JsonObject root)
            throw new UserErrorException($"{sourceName}: must hold a JSON object.");
        var fields = new JsonFields(root, sourceName);

        string modelType = fields.RequiredString("model_type");
        if (!s_architectureByModelType.TryGetValue(modelType, out string? architecture))
            throw new UserErrorException(
                $"{sourceName}: model_type \"{modelType}\" is not supported; FineTune runs llama, mistral and qwen2 models.");
        CheckArchitectures(fields, architecture, sourceName);

        string activation = fields.String("hidden_act") ?? "silu";
        if (activation is not ("silu" or "swish"))
            throw new UserErrorException($"{sourceName}: hidden_act \"{activation}\" is not supported; only silu is.");
        double dropout = fields.Double("attention_dropout") ?? 0.0;
        if (dropout != 0.0)
            throw new UserErrorException($"{sourceName}: attention_dropout {dropout} is not supported; set it to 0.0.");

        int hidden = fields.RequiredInt("hidden_size");
        int heads = fields.RequiredInt("num_attention_heads");
        if (heads <= 0)
            throw new UserErrorException($"{sourceName}: num_attention_heads ({heads}) must be a positive integer.");
        int? headDim = fields.Int("head_dim");
        if (headDim is null && hidden % heads != 0)
            throw new UserErrorException(
                $"{sourceName}: hidden_size ({hidden}) is not a multiple of num_attention_heads ({heads}); give head_dim.");
        // MistralConfig's num_key_value_heads argument defaults to 8; llama and qwen2 default to the head count.
        int kvHeads = fields.Int("num_key_value_heads") ?? (modelType == "mistral" && !root.ContainsKey("num_key_value_heads") ? 8 : heads);

        (bool attentionBias, bool outputBias, bool mlpBias) = Biases(fields, modelType, sourceName);
        (double theta, RopeScaling scaling) = RopeReader.Read(fields, sourceName);

        var config = new LlamaConfig
        {
            ModelType = modelType,
            VocabSize = fields.RequiredInt("vocab_size"),
            HiddenSize = hidden,
            IntermediateSize = fields.RequiredInt("intermediate_size"),
            LayerCount = fields.RequiredInt("num_hidden_layers"),
            HeadCount = heads,
            KvHeadCount = kvHeads,
            HeadDim = headDim ?? hidden / heads,
            RmsNormEps = fields.Double("rms_norm_eps") ?? 1e-6,
            RopeTheta = theta,
            RopeScaling = scaling,
            MaxPositionEmbeddings = fields.Int("max_position_embeddings") ?? modelType switch
            {
                "mistral" => 4096 * 32,
                "qwen2" => 32768,
                _ => 2048,
            },
            InitializerRange = fields.Double("initializer_range") ?? 0.02,
            TieWordEmbeddings = fields.Bool("tie_word_embeddings") ?? false,
            AttentionBias = attentionBias,
            OutputProjectionBias = outputBias,
            MlpBias = mlpBias,
            SlidingWindow = SlidingWindow(fields, modelType, root),
            BosTokenId = root.ContainsKey("bos_token_id") ? fields.Int("bos_token_id") : modelType == "qwen2" ? null : 1,
            EosTokenIds = root.ContainsKey("eos_token_id") ? fields.IntOrIntList("eos_token_id") : modelType == "qwen2" ? [] : [2],
            PadTokenId = fields.Int("pad_token_id"),
            TorchDType = fields.String("torch_dtype") ?? fields.String("dtype"),
            Source = root,
        };
        config.Validate(sourceName);
        CheckNonsense(config, sourceName);
        return config;
    }

    /// <summary>torch_dtype values transformers writes (and "auto"); anything else is a typo that would otherwise pick f32 silently.</summary>
    private static readonly HashSet<string> s_torchDTypes = new(StringComparer.Ordinal) { "float32", "float16", "bfloat16", "float64", "auto", "float", "half" };

    /// <summary>Values transformers would also reject or misuse: an unknown torch_dtype, special-token ids outside the vocabulary.</summary>
    private static void CheckNonsense(LlamaConfig config, string sourceName)
    {
        if (config.TorchDType is string dtype && !s_torchDTypes.Contains(dtype))
            throw new UserErrorException($"{sourceName}: torch_dtype \"{dtype}\" is not a dtype transformers writes; use float32, bfloat16 or float16.");
        foreach (var (name, id) in new[] { ("bos_token_id", config.BosTokenId), ("pad_token_id", config.PadTokenId) }.Concat(config.EosTokenIds.Select(e => ("eos_token_id", (int?)e))))
        {
            if (id is int value && (value < 0 || value >= config.VocabSize))
                throw new UserErrorException($"{sourceName}: {name} {value} is not a token id of the {config.VocabSize}-token vocabulary; set it to an id below vocab_size, or null.");
        }
    }

    private static void CheckArchitectures(JsonFields fields, string expected, string sourceName)
    {
        IReadOnlyList<string>? architectures = fields.StringList("architectures");
        if (architectures is null || architectures.Count == 0)
            return;
        if (architectures[0] != expected)
            throw new UserErrorException(
                $"{sourceName}: architectures [\"{architectures[0]}\"] is not supported; FineTune trains {expected} (a causal LM head).");
    }

    private static (bool Attention, bool Output, bool Mlp) Biases(JsonFields fields, string modelType, string sourceName)
    {
        bool? attentionBias = fields.Bool("attention_bias");
        bool? mlpBias = fields.Bool("mlp_bias");
        switch (modelType)
        {
            case "llama":
                // LlamaAttention: q, k, v and o_proj all take bias=config.attention_bias; LlamaMLP: mlp_bias.
                return (attentionBias ?? false, attentionBias ?? false, mlpBias ?? false);
            case "qwen2":
                // Qwen2Attention: q/k/v biases always, o_proj never; no MLP bias.
                if (attentionBias == false || mlpBias == true)
                    throw new UserErrorException(
                        $"{sourceName}: qwen2 models always have q/k/v biases and no MLP bias; remove attention_bias/mlp_bias.");
                return (true, false, false);
            default:
                if (attentionBias == true || mlpBias == true)
                    throw new UserErrorException(
                        $"{sourceName}: mistral models have no biases; remove attention_bias/mlp_bias or use model_type llama.");
                return (false, false, false);
        }
    }

    private static int? SlidingWindow(JsonFields fields, string modelType, JsonObject root) => modelType switch
    {
        "mistral" => root.ContainsKey("sliding_window") ? fields.Int("sliding_window") : 4096,
        "qwen2" => fields.Bool("use_sliding_window") == true ? (root.ContainsKey("sliding_window") ? fields.Int("sliding_window") : 4096) : null,
        _ => null,
    };
}
