namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// The linear projections of a Llama decoder layer that LoRA can adapt, under the module names PEFT and
/// transformers use (q_proj ... down_proj), with their place in the layer and their (in, out) features.
/// "all-linear" is PEFT's shorthand for every linear layer except the output head: here the seven projections.
/// The canonical order below is the order adapters are created, stored and seeded in, whatever order a recipe
/// or an adapter_config.json lists them in.
/// reference: peft tuners/lora/model.py and utils/constants.py (INCLUDE_LINEAR_LAYERS_SHORTHAND = "all-linear");
/// transformers modeling_llama.py (LlamaAttention, LlamaMLP).
/// </summary>
public static class LoraTargets
{
    public const string AllLinear = "all-linear";

    /// <summary>Every adaptable projection, in the canonical order (its index seeds that projection's dropout).</summary>
    public static readonly IReadOnlyList<string> Modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

    /// <summary>The attention projections: the default of model.lora.target_modules.</summary>
    public static readonly IReadOnlyList<string> Default = ["q_proj", "k_proj", "v_proj", "o_proj"];

    /// <summary>
    /// The distinct module names of <paramref name="names"/> in canonical order, "all-linear" expanded.
    /// Throws <see cref="ArgumentException"/> naming the first unknown name.
    /// </summary>
    public static IReadOnlyList<string> Resolve(IEnumerable<string> names)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (string name in names)
        {
            if (name == AllLinear)
                wanted.UnionWith(Modules);
            else if (Modules.Contains(name, StringComparer.Ordinal))
                wanted.Add(name);
            else
                throw new ArgumentException($"{name} is not a LoRA target; use {string.Join(", ", Modules)} or {AllLinear}.", nameof(names));
        }
        return Modules.Where(wanted.Contains).ToArray();
    }

    /// <summary>Position of <paramref name="module"/> in <see cref="Modules"/>.</summary>
    public static int Index(string module)
    {
        for (int i = 0; i < Modules.Count; i++)
            if (Modules[i] == module)
                return i;
        throw new ArgumentException($"{module} is not a LoRA target.", nameof(module));
    }

    /// <summary>Where the projection sits inside a decoder layer: "self_attn.q_proj", "mlp.down_proj".</summary>
    public static string LocalPath(string module) =>
        Index(module) < 4 ? "self_attn." + module : "mlp." + module;

    /// <summary>The projection's HF module name in layer <paramref name="layer"/>: "model.layers.3.self_attn.q_proj".</summary>
    public static string ModuleName(int layer, string module) => LlamaTensorNames.LayerPrefix(layer) + LocalPath(module);

    /// <summary>(in, out) features of the projection: its weight is (out, in), as nn.Linear stores it.</summary>
    public static (long In, long Out) Features(LlamaConfig config, string module)
    {
        long c = config.HiddenSize, q = config.QueryWidth, kv = config.KeyValueWidth, f = config.IntermediateSize;
        return module switch
        {
            "q_proj" => (c, q),
            "k_proj" or "v_proj" => (c, kv),
            "o_proj" => (q, c),
            "gate_proj" or "up_proj" => (c, f),
            "down_proj" => (f, c),
            _ => throw new ArgumentException($"{module} is not a LoRA target.", nameof(module)),
        };
    }
}
