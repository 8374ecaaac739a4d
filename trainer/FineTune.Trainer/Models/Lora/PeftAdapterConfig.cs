using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// adapter_config.json of a PEFT LoRA adapter folder, both ways. Written with every field a PEFT LoraConfig of the
/// 0.1x releases saves (sorted keys, 2-space indent, as PEFT's save_pretrained), so peft.PeftModel.from_pretrained
/// loads it; read strictly: what FineTune cannot reproduce exactly (DoRA, rsLoRA, per-module rank or alpha
/// patterns, LoRA biases, fan_in_fan_out, a subset of layers, a regular-expression target) is refused with one
/// sentence rather than silently computed differently.
/// reference: peft tuners/lora/config.py LoraConfig; config.py PeftConfigMixin.save_pretrained / from_pretrained.
/// </summary>
public static class PeftAdapterConfig
{
    public const string FileName = "adapter_config.json";

    /// <summary>The JSON PEFT would write for <paramref name="config"/>.</summary>
    public static JsonObject ToJson(LoraConfig config, string? baseModelNameOrPath)
    {
        JsonNode? modulesToSave = config.Trainable.Count == 0
            ? null
            : new JsonArray(LoraTrainableModules.Names.Where(config.Trainable.Contains).Select(m => (JsonNode?)LoraTrainableModules.PeftName(m)).ToArray());
        var fields = new SortedDictionary<string, JsonNode?>(StringComparer.Ordinal)
        {
            ["alpha_pattern"] = new JsonObject(),
            ["auto_mapping"] = null,
            ["base_model_name_or_path"] = baseModelNameOrPath,
            ["bias"] = "none",
            ["fan_in_fan_out"] = false,
            ["inference_mode"] = true,
            ["init_lora_weights"] = true,
            ["layer_replication"] = null,
            ["layers_pattern"] = null,
            ["layers_to_transform"] = null,
            ["loftq_config"] = new JsonObject(),
            ["lora_alpha"] = config.Alpha == Math.Floor(config.Alpha) && Math.Abs(config.Alpha) < 1e9 ? JsonValue.Create((long)config.Alpha) : JsonValue.Create(config.Alpha),
            ["lora_dropout"] = config.Dropout,
            ["megatron_config"] = null,
            ["megatron_core"] = "megatron.core",
            ["modules_to_save"] = modulesToSave,
            ["peft_type"] = "LORA",
            ["r"] = config.Rank,
            ["rank_pattern"] = new JsonObject(),
            ["revision"] = null,
            ["target_modules"] = new JsonArray(config.Targets.Select(t => (JsonNode?)t).ToArray()),
            ["task_type"] = "CAUSAL_LM",
            ["use_dora"] = false,
            ["use_rslora"] = false,
        };
        var json = new JsonObject();
        foreach (var (key, value) in fields)
            json[key] = value;
        return json;
    }

    public static string ToText(LoraConfig config, string? baseModelNameOrPath) =>
        ToJson(config, baseModelNameOrPath).ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

    /// <summary>Reads FOLDER/adapter_config.json: the LoRA config and base_model_name_or_path, or a one-sentence user error.</summary>
    public static (LoraConfig Config, string? BaseModelNameOrPath) Read(string folder)
    {
        string path = Path.Combine(folder, FileName);
        if (!File.Exists(path))
            throw new UserErrorException($"{folder} holds no {FileName}; give the folder of a PEFT LoRA adapter (adapter_config.json + adapter_model.safetensors).");
        JsonObject json;
        using (JsonDocument document = IO.StrictJson.ReadFile(path, IO.InputFile.ConfigLimitByteCount, FileName, "replace it with the adapter_config.json PEFT saved"))
        {
            json = document.RootElement.ValueKind == JsonValueKind.Object
                ? JsonObject.Create(document.RootElement.Clone())!
                : throw new UserErrorException($"{path} is not a JSON object; it should be a PEFT adapter_config.json.");
        }
        var fields = new JsonFields(json, path);
        string peftType = fields.String("peft_type") ?? "(missing)";
        if (peftType != "LORA")
            throw new UserErrorException($"{path}: peft_type is {peftType}; FineTune loads LoRA adapters (peft_type LORA) only.");
        Refuse(fields.Bool("use_dora") == true, path, "use_dora is true; DoRA adapters are not supported, only plain LoRA");
        Refuse(fields.Bool("use_rslora") == true, path, "use_rslora is true; FineTune scales LoRA by lora_alpha / r only, not alpha / sqrt(r)");
        Refuse(fields.Bool("fan_in_fan_out") == true, path, "fan_in_fan_out is true, which is for GPT-2 style Conv1D weights; Llama projections need false");
        Refuse((fields.String("bias") ?? "none") != "none", path, $"bias is {fields.String("bias")}; FineTune's LoRA trains no biases (bias \"none\")");
        Refuse(IsNonEmpty(json["rank_pattern"]) || IsNonEmpty(json["alpha_pattern"]), path, "rank_pattern or alpha_pattern gives some modules their own rank or alpha; FineTune needs one r and one lora_alpha for all");
        Refuse(IsNonEmpty(json["layers_to_transform"]) || IsNonEmpty(json["layer_replication"]), path, "layers_to_transform or layer_replication adapts only some layers; FineTune needs adapters on every layer");

        int rank = fields.Int("r") ?? throw new UserErrorException($"{path}: required field r (the LoRA rank) is missing.");
        double alpha = fields.Double("lora_alpha") ?? 8; // PEFT's LoraConfig default
        double dropout = fields.Double("lora_dropout") ?? 0;
        var config = new LoraConfig
        {
            Rank = rank,
            Alpha = alpha,
            Dropout = dropout,
            TargetModules = TargetModules(json["target_modules"], path),
            Trainable = Trainable(fields.StringList("modules_to_save") ?? [], path),
        };
        try
        {
            config.Validate();
        }
        catch (ArgumentException e)
        {
            throw new UserErrorException($"{path}: {e.Message.TrimEnd('.')}.", e);
        }
        return (config, fields.String("base_model_name_or_path"));
    }

    private static IReadOnlyList<string> TargetModules(JsonNode? node, string path)
    {
        string[] names = node switch
        {
            JsonValue v when v.GetValueKind() == JsonValueKind.String => [v.GetValue<string>()],
            JsonArray array => array.Select(n => n is JsonValue s && s.GetValueKind() == JsonValueKind.String
                ? s.GetValue<string>()
                : throw new UserErrorException($"{path}: target_modules must be a list of module names.")).ToArray(),
            _ => throw new UserErrorException($"{path}: target_modules is missing; it must list the adapted projections (q_proj, v_proj, ...)."),
        };
        if (node is JsonValue && names[0] != LoraTargets.AllLinear)
            throw new UserErrorException($"{path}: target_modules is the pattern \"{names[0]}\" (PEFT reads a string as a regular expression); FineTune needs a list of projection names such as [\"q_proj\", \"v_proj\"] or \"all-linear\".");
        foreach (string name in names)
            if (name != LoraTargets.AllLinear && !LoraTargets.Modules.Contains(name, StringComparer.Ordinal))
                throw new UserErrorException($"{path}: target module {name} is not one FineTune can adapt; it adapts {string.Join(", ", LoraTargets.Modules)}.");
        return LoraTargets.Resolve(names);
    }

    private static IReadOnlyList<string> Trainable(IReadOnlyList<string> modulesToSave, string path)
    {
        var modules = new List<string>();
        foreach (string name in modulesToSave)
        {
            string? module = name == "model.norm" ? LoraTrainableModules.FinalNorm
                : name != LoraTrainableModules.FinalNorm && LoraTrainableModules.Names.Contains(name, StringComparer.Ordinal) ? name
                : null;
            if (module is null)
                throw new UserErrorException($"{path}: modules_to_save names {name}, which FineTune cannot train in full; it trains {string.Join(", ", LoraTrainableModules.Names.Select(LoraTrainableModules.PeftName))}.");
            if (!modules.Contains(module))
                modules.Add(module);
        }
        return modules;
    }

    private static bool IsNonEmpty(JsonNode? node) => node switch
    {
        null => false,
        JsonObject o => o.Count > 0,
        JsonArray a => a.Count > 0,
        _ => node.GetValueKind() != JsonValueKind.Null, // layers_to_transform: 3 means layer 3 only
    };

    private static void Refuse(bool condition, string path, string problem)
    {
        if (condition)
            throw new UserErrorException(string.Create(CultureInfo.InvariantCulture, $"{path}: {problem}."));
    }
}
