using System.Text.Json;

namespace FineTune.Trainer.Recipes;

/// <summary>
/// The few numbers of a Llama-family architecture the recipe checks need (parameter count, largest tensor,
/// positions), from model.config or from model.path/config.json. Not the model's config loader: unknown
/// fields are ignored and missing ones take LlamaConfig defaults (FORMATS.md §2.3).
/// </summary>
internal sealed record ModelShape(long VocabSize, long HiddenSize, long IntermediateSize, long Layers, long Heads,
    long KeyValueHeads, long MaxPositions, bool TiedEmbeddings, string Source)
{
    /// <summary>
    /// Embedding + per layer (q, o: H×H; k, v: H×(kv·H/heads); gate, up, down: H×I; two norms: H) + final norm
    /// + untied lm_head. reference: transformers modeling_llama.py module shapes (FORMATS.md §2.4).
    /// </summary>
    public long ParameterCount
    {
        get
        {
            long headDim = HiddenSize / Heads;
            long perLayer = 2 * HiddenSize * HiddenSize + 2 * HiddenSize * KeyValueHeads * headDim
                + 3 * HiddenSize * IntermediateSize + 2 * HiddenSize;
            return VocabSize * HiddenSize * (TiedEmbeddings ? 1 : 2) + Layers * perLayer + HiddenSize;
        }
    }

    /// <summary>Elements of the largest single tensor (the embedding, or an MLP matrix in a tiny-vocabulary model).</summary>
    public long LargestTensorElements => Math.Max(VocabSize * HiddenSize, HiddenSize * IntermediateSize);

    public static ModelShape FromConfig(LlamaConfigSection c) => new(c.VocabSize, c.HiddenSize, c.IntermediateSize,
        c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads, c.MaxPositionEmbeddings, c.TieWordEmbeddings, "model.config");

    /// <summary>Reads &lt;folder&gt;/config.json; throws a user error naming the file when it is not usable JSON.</summary>
    public static ModelShape FromConfigJson(string configPath)
    {
        try
        {
            using JsonDocument document = IO.StrictJson.ReadFile(configPath, IO.InputFile.ConfigLimitByteCount, "config.json", "re-download the model's config.json");
            JsonElement root = document.RootElement;
            long Get(string name, long fallback) =>
                root.TryGetProperty(name, out JsonElement e) && e.ValueKind == JsonValueKind.Number ? e.GetInt64() : fallback;
            long heads = Get("num_attention_heads", 32);
            bool tied = root.TryGetProperty("tie_word_embeddings", out JsonElement t) && t.ValueKind == JsonValueKind.True;
            var shape = new ModelShape(Get("vocab_size", 32000), Get("hidden_size", 4096), Get("intermediate_size", 11008),
                Get("num_hidden_layers", 32), heads, Get("num_key_value_heads", heads), Get("max_position_embeddings", 2048), tied, configPath);
            if (shape.VocabSize <= 0 || shape.HiddenSize <= 0 || shape.Heads <= 0 || shape.Layers <= 0 || shape.KeyValueHeads <= 0)
                throw new UserErrorException($"{configPath} has a non-positive size; check vocab_size, hidden_size, num_hidden_layers and the head counts.");
            return shape;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new UserErrorException($"{configPath} is not a usable config.json ({e.Message.TrimEnd('.')}); re-download the model folder.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot read {configPath} ({e.Message.TrimEnd('.')}).", e);
        }
    }
}
