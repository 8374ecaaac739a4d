namespace FineTune.Trainer.Models;

/// <summary>
/// The HF tensor names and shapes of a Llama-family checkpoint, in the one stable order FineTune uses everywhere
/// (embedding, layer 0 .. L-1 each in a fixed order, final norm, lm_head when untied), and the check that a set of
/// tensors found on disk is exactly that set.
/// reference: transformers convert_llama_weights_to_hf.py and modeling_llama.py (nn.Linear.weight is [out, in]);
/// FORMATS.md §2.4.
/// </summary>
public static class LlamaTensorNames
{
    public const string Embedding = "model.embed_tokens.weight";
    public const string FinalNorm = "model.norm.weight";
    public const string LmHead = "lm_head.weight";

    public static string LayerPrefix(int layer) => $"model.layers.{layer}.";

    /// <summary>Every parameter of the model in the stable order.</summary>
    public static IReadOnlyList<ParameterSpec> All(LlamaConfig config)
    {
        var specs = new List<ParameterSpec> { new(Embedding, [config.VocabSize, config.HiddenSize]) };
        for (int layer = 0; layer < config.LayerCount; layer++)
            specs.AddRange(Layer(config, layer));
        specs.Add(new(FinalNorm, [config.HiddenSize]));
        if (!config.TieWordEmbeddings)
            specs.Add(new(LmHead, [config.VocabSize, config.HiddenSize]));
        return specs;
    }

    /// <summary>The parameters of decoder layer <paramref name="layer"/>, in the stable order.</summary>
    public static IReadOnlyList<ParameterSpec> Layer(LlamaConfig config, int layer)
    {
        string p = LayerPrefix(layer);
        long c = config.HiddenSize, q = config.QueryWidth, kv = config.KeyValueWidth, f = config.IntermediateSize;
        var specs = new List<ParameterSpec>
        {
            new(p + "input_layernorm.weight", [c]),
            new(p + "self_attn.q_proj.weight", [q, c]),
            new(p + "self_attn.k_proj.weight", [kv, c]),
            new(p + "self_attn.v_proj.weight", [kv, c]),
        };
        if (config.AttentionBias)
        {
            specs.Add(new(p + "self_attn.q_proj.bias", [q]));
            specs.Add(new(p + "self_attn.k_proj.bias", [kv]));
            specs.Add(new(p + "self_attn.v_proj.bias", [kv]));
        }
        specs.Add(new(p + "self_attn.o_proj.weight", [c, q]));
        if (config.OutputProjectionBias)
            specs.Add(new(p + "self_attn.o_proj.bias", [c]));
        specs.Add(new(p + "post_attention_layernorm.weight", [c]));
        specs.Add(new(p + "mlp.gate_proj.weight", [f, c]));
        specs.Add(new(p + "mlp.up_proj.weight", [f, c]));
        specs.Add(new(p + "mlp.down_proj.weight", [c, f]));
        if (config.MlpBias)
        {
            specs.Add(new(p + "mlp.gate_proj.bias", [f]));
            specs.Add(new(p + "mlp.up_proj.bias", [f]));
            specs.Add(new(p + "mlp.down_proj.bias", [c]));
        }
        return specs;
    }

    /// <summary>
    /// Tensors a checkpoint may hold that FineTune ignores: the legacy rotary_emb.inv_freq buffers (recomputed from
    /// the config) and lm_head.weight when the embeddings are tied (transformers ties them and drops the copy).
    /// </summary>
    public static bool IsIgnored(LlamaConfig config, string name) =>
        name.EndsWith(".rotary_emb.inv_freq", StringComparison.Ordinal) || (config.TieWordEmbeddings && name == LmHead);

    /// <summary>
    /// Checks that <paramref name="found"/> (tensor name to shape and the file holding it) is exactly the expected
    /// set: throws a <see cref="UserErrorException"/> naming the first missing tensor (in the stable order), the first
    /// tensor with a wrong shape, or the first unexpected one.
    /// </summary>
    public static void CheckComplete(LlamaConfig config, IReadOnlyDictionary<string, (long[] Shape, string File)> found, string folder)
    {
        IReadOnlyList<ParameterSpec> expected = All(config);
        foreach (ParameterSpec spec in expected)
        {
            if (!found.TryGetValue(spec.Name, out var actual))
                throw new UserErrorException(
                    $"{folder}: tensor {spec.Name} {spec.ShapeText} is missing from the checkpoint; the weights do not match config.json.");
            if (!actual.Shape.SequenceEqual(spec.Shape))
                throw new UserErrorException(
                    $"{actual.File}: tensor {spec.Name} has shape [{string.Join(", ", actual.Shape)}] but config.json implies {spec.ShapeText}.");
        }
        var expectedNames = expected.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var (name, (_, file)) in found.OrderBy(pair => pair.Key, StringComparer.Ordinal))
        {
            if (!expectedNames.Contains(name) && !IsIgnored(config, name))
                throw new UserErrorException(
                    $"{file}: unexpected tensor {name}; the checkpoint does not match config.json (layer count, biases or tied embeddings).");
        }
    }
}
