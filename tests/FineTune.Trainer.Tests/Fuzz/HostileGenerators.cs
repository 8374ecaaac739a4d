using System.Globalization;
using System.Text;
using FsCheck;
using FsCheck.Fluent;

namespace FineTune.Trainer.Tests.Fuzz;

/// <summary>
/// Generators of hostile inputs: JSON and YAML assembled from the real keys and plausible-looking but wrong values
/// (huge, negative, fractional, wrong types, nested, empty, duplicated keys), then sometimes cut short or with a
/// byte flipped, so most cases reach deep into validation instead of failing at the first brace.
/// </summary>
internal static class HostileGenerators
{
    private static readonly string[] s_configKeys =
    [
        "model_type", "architectures", "vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
        "num_attention_heads", "num_key_value_heads", "head_dim", "max_position_embeddings", "rms_norm_eps", "rope_theta",
        "rope_scaling", "tie_word_embeddings", "torch_dtype", "bos_token_id", "eos_token_id", "pad_token_id", "hidden_act",
        "attention_bias", "mlp_bias", "sliding_window", "use_sliding_window", "attention_dropout", "initializer_range", "x",
    ];

    public static Gen<string> Number() => Gen.OneOf(
        Gen.Elements("0", "1", "2", "4", "8", "32", "64", "-1", "-2147483648", "2147483647", "2147483648", "4294967296",
            "9223372036854775807", "1e308", "1e400", "-0", "0.5", "3.0", "1e-9", "NaN", "Infinity", "0x10", "01"),
        Gen.Choose(-5, 70000).Select(i => i.ToString(CultureInfo.InvariantCulture)),
        Gen.Choose(0, 62).Select(shift => (1L << shift).ToString(CultureInfo.InvariantCulture)));

    public static Gen<string> JsonValue(int depth) => depth <= 0
        ? Gen.OneOf(Number(), Gen.Elements("null", "true", "false", "\"llama\"", "\"mistral\"", "\"qwen2\"", "\"float32\"", "\"bfloat16\"", "\"float99\"", "\"\"", "\"silu\"", "\"\\u0000\"", "[]", "{}"))
        : Gen.Frequency(
            (6, JsonValue(0)),
            (1, Gen.ListOf(JsonValue(depth - 1), 3).Select(items => "[" + string.Join(",", items) + "]")),
            (1, Gen.ListOf(Gen.Zip(Gen.Elements("type", "factor", "rope_type", "original_max_position_embeddings", "low_freq_factor"), JsonValue(depth - 1)), 3)
                .Select(pairs => "{" + string.Join(",", pairs.Select(p => $"\"{p.Item1}\":{p.Item2}")) + "}")));

    /// <summary>A config.json: mostly well-formed objects of real keys (some repeated), sometimes damaged text.</summary>
    public static Gen<string> ConfigJson() =>
        from pairs in Gen.ListOf(Gen.Zip(Gen.Elements(s_configKeys), JsonValue(2)), 14)
        from baseline in Gen.Elements(true, false)
        from damage in Damage()
        select damage(Object(baseline
            ? [("model_type", "\"llama\""), ("vocab_size", "64"), ("hidden_size", "32"), ("intermediate_size", "64"), ("num_hidden_layers", "2"), ("num_attention_heads", "4"), .. pairs.Select(p => (p.Item1, p.Item2))]
            : pairs.Select(p => (p.Item1, p.Item2)).ToList()));

    /// <summary>A safetensors header: entries of dtype/shape/data_offsets with wrong, huge or repeated fields, and __metadata__.</summary>
    public static Gen<string> SafetensorsHeader()
    {
        Gen<string> dtype = Gen.Elements("\"F32\"", "\"BF16\"", "\"F16\"", "\"I64\"", "\"U8\"", "\"BOOL\"", "\"F8_E4M3\"", "\"X\"", "3", "null");
        Gen<string> dims = Gen.ListOf(Number(), 4).Select(d => "[" + string.Join(",", d) + "]");
        Gen<string> field = Gen.OneOf(
            dtype.Select(d => ("dtype", d)),
            dims.Select(s => ("shape", s)),
            Gen.Zip(Number(), Number()).Select(o => ("data_offsets", $"[{o.Item1},{o.Item2}]")),
            JsonValue(1).Select(v => ("junk", v))).Select(kv => $"\"{kv.Item1}\":{kv.Item2}");
        Gen<string> tensor = Gen.ListOf(field, 5).Select(fields => "{" + string.Join(",", fields) + "}");
        Gen<string> wellFormed = Gen.Zip(Gen.Choose(0, 4), Gen.Choose(0, 3)).Select(d => $"{{\"dtype\":\"F32\",\"shape\":[{d.Item1}],\"data_offsets\":[0,{d.Item1 * 4}]}}");
        return from entries in Gen.ListOf(Gen.Zip(Gen.Elements("a", "b", "model.embed_tokens.weight", "__metadata__", "a"), Gen.OneOf(tensor, wellFormed, JsonValue(1))), 4)
               from damage in Damage()
               select damage(Object(entries.Select(e => (e.Item1, e.Item2)).ToList()));
    }

    /// <summary>Recipe YAML: schema keys (and near misses) with wrong-typed, huge, empty or structured values.</summary>
    public static Gen<string> RecipeYaml(IReadOnlyList<string> paths, IReadOnlyList<string> files)
    {
        Gen<string> scalar = Gen.OneOf(Number(), Gen.Elements("null", "~", "true", "false", "''", "\"\"", "cuda", "gpu", "nvme", "bf16", "fp16", "auto", "[0.9, 0.999]", "[1]", "{a: 1}", "- x", "\"\\0\"", "&a x", "*a", "!!binary AAAA"),
            Gen.Elements(files.ToArray()));
        Gen<string> key = Gen.OneOf(Gen.Elements(paths.ToArray()), Gen.Elements(paths.ToArray()).Select(p => p + "x"), Gen.Elements("dataset.train_on_inputs", "training.lr", "model", "offload", "resume"));
        return from entries in Gen.ListOf(Gen.Zip(key, scalar), 8)
               from damage in Damage()
               select damage(Yaml(entries.Select(e => (e.Item1, e.Item2)).ToList()));
    }

    /// <summary>
    /// Overrides (key=value) for a valid base recipe: 0-4 fields set to values meant for them or for another kind,
    /// so most cases bind and reach the semantic, file, size and budget checks and the plan.
    /// </summary>
    public static Gen<string[]> RecipeOverrides(IReadOnlyList<string> paths, IReadOnlyList<string> files)
    {
        Gen<string> value = Gen.Frequency(
            (3, Gen.Choose(0, 4096).Select(i => i.ToString(CultureInfo.InvariantCulture))),
            (2, Number()),
            (1, Gen.Elements("null", "true", "false", "0.5", "1e-3", "[0.9, 0.95]", "cuda", "cpu", "nvme", "host", "auto", "bf16", "fp32", "text", "alpaca", "chat", "synthetic", "cosine", "add", "split", "drop", "latest")),
            (1, Gen.Elements(files.ToArray())));
        return Gen.Choose(0, 4).SelectMany(count => Gen.ArrayOf(Gen.Zip(Gen.Elements(paths.ToArray()), value).Select(kv => $"{kv.Item1}={kv.Item2}"), count));
    }

    private static string Object(IReadOnlyList<(string Key, string Value)> pairs) =>
        "{" + string.Join(",", pairs.Select(p => $"\"{p.Key}\":{p.Value}")) + "}";

    /// <summary>Nested YAML from dotted keys, in the given order (a repeated key stays repeated).</summary>
    private static string Yaml(IReadOnlyList<(string Path, string Value)> entries)
    {
        var text = new StringBuilder();
        foreach (var (path, value) in entries)
        {
            string[] parts = path.Split('.');
            for (int i = 0; i < parts.Length - 1; i++)
                text.Append(' ', 2 * i).Append(parts[i]).Append(":\n");
            text.Append(' ', 2 * (parts.Length - 1)).Append(parts[^1]).Append(": ").Append(value).Append('\n');
        }
        return text.ToString();
    }

    /// <summary>Most texts unchanged; some cut at a random point, some with one character replaced.</summary>
    private static Gen<Func<string, string>> Damage() => Gen.Frequency(
        (8, Gen.Constant<Func<string, string>>(s => s)),
        (1, Gen.Choose(0, 10000).Select<int, Func<string, string>>(cut => s => s[..(cut % (s.Length + 1))])),
        (1, Gen.Zip(Gen.Choose(0, 10000), Gen.Elements('"', '{', '}', ',', ':', '\0', '\n', 'é', '\\'))
            .Select<(int, char), Func<string, string>>(d => s => s.Length == 0 ? s : s.Remove(d.Item1 % s.Length, 1).Insert(d.Item1 % s.Length, d.Item2.ToString()))));
}
