namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Base modules trained in full next to the adapters (model.lora.trainable; PEFT's modules_to_save): the norms,
/// the embedding or the LM head. Their weights get gradients, a master copy and optimizer state like any trained
/// parameter and are saved inside the adapter file under PEFT's names
/// (base_model.model.model.layers.0.input_layernorm.weight). The names written to modules_to_save are the ones
/// PEFT matches by suffix: "input_layernorm" selects every layer's, and the final norm is "model.norm" because a
/// bare "norm" would also select the layer norms.
/// reference: peft utils/other.py ModulesToSaveWrapper.adapter_state_dict; utils/save_and_load.py.
/// </summary>
public static class LoraTrainableModules
{
    public const string InputNorm = "input_layernorm";
    public const string PostAttentionNorm = "post_attention_layernorm";
    public const string FinalNorm = "norm";
    public const string Embedding = "embed_tokens";
    public const string LmHead = "lm_head";

    /// <summary>Every name model.lora.trainable accepts.</summary>
    public static readonly IReadOnlyList<string> Names = [InputNorm, PostAttentionNorm, FinalNorm, Embedding, LmHead];

    /// <summary>
    /// The HF parameter names these modules own in <paramref name="config"/>'s model, in the model's stable order,
    /// each once (a tied lm_head is the embedding).
    /// </summary>
    public static IReadOnlyList<string> ParameterNames(LlamaConfig config, IEnumerable<string> modules)
    {
        var wanted = new HashSet<string>(StringComparer.Ordinal);
        foreach (string module in modules)
        {
            switch (module)
            {
                case InputNorm or PostAttentionNorm:
                    for (int layer = 0; layer < config.LayerCount; layer++)
                        wanted.Add($"{LlamaTensorNames.LayerPrefix(layer)}{module}.weight");
                    break;
                case FinalNorm: wanted.Add(LlamaTensorNames.FinalNorm); break;
                case Embedding: wanted.Add(LlamaTensorNames.Embedding); break;
                case LmHead: wanted.Add(config.TieWordEmbeddings ? LlamaTensorNames.Embedding : LlamaTensorNames.LmHead); break;
                default:
                    throw new ArgumentException($"{module} is not a module LoRA can train in full; use {string.Join(", ", Names)}.", nameof(modules));
            }
        }
        return LlamaTensorNames.All(config).Select(s => s.Name).Where(wanted.Contains).ToArray();
    }

    /// <summary>The name PEFT's modules_to_save uses for <paramref name="module"/> (matched as a suffix of module names).</summary>
    public static string PeftName(string module) => module == FinalNorm ? "model.norm" : module;

    /// <summary>
    /// The module a base parameter belongs to when it is one LoRA can train in full ("model.layers.2.input_layernorm.weight"
    /// -> input_layernorm, "model.norm.weight" -> norm), else null. An adapter file says which extras it holds by the
    /// tensors it has, so this is how a loaded adapter's trainable list is rebuilt.
    /// </summary>
    public static string? ModuleOf(string parameterName) => parameterName switch
    {
        LlamaTensorNames.FinalNorm => FinalNorm,
        LlamaTensorNames.Embedding => Embedding,
        LlamaTensorNames.LmHead => LmHead,
        _ when parameterName.StartsWith("model.layers.", StringComparison.Ordinal) && parameterName.EndsWith("." + InputNorm + ".weight", StringComparison.Ordinal) => InputNorm,
        _ when parameterName.StartsWith("model.layers.", StringComparison.Ordinal) && parameterName.EndsWith("." + PostAttentionNorm + ".weight", StringComparison.Ordinal) => PostAttentionNorm,
        _ => null,
    };
}
