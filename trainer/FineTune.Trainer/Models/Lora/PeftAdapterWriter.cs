using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Writes a PEFT LoRA adapter folder that peft.PeftModel.from_pretrained (and <see cref="PeftAdapterReader"/>) load:
/// adapter_config.json (<see cref="PeftAdapterConfig"/>) and adapter_model.safetensors holding, in float32,
///   base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight   (r, in)
///   base_model.model.model.layers.N.self_attn.q_proj.lora_B.weight   (out, r)
/// for every adapter, plus the full weights of the modules trained beside them (modules_to_save) under
/// base_model.model.&lt;HF name&gt;. The names are what PEFT's get_peft_model_state_dict returns for a
/// LlamaForCausalLM (adapter name "default" removed); metadata {"format": "pt"} as PEFT writes it. Each file is
/// written to a temporary name, fsynced and renamed; a folder that already holds an adapter is refused.
/// reference: peft utils/save_and_load.py get_peft_model_state_dict; peft_model.py PeftModel.save_pretrained.
/// </summary>
public static class PeftAdapterWriter
{
    public const string WeightsFileName = "adapter_model.safetensors";

    /// <summary>The prefix PEFT's model wrapper (PeftModelForCausalLM -> LoraModel -> LlamaForCausalLM) puts before HF names.</summary>
    public const string TensorPrefix = "base_model.model.";

    /// <param name="adapters">The adapters to write.</param>
    /// <param name="model">The base model, for the weights of the modules trained in full (model.lora.trainable).</param>
    /// <param name="folder">Output folder; created if missing.</param>
    /// <param name="baseModelNameOrPath">What adapter_config.json names as the base (an HF id or folder); null writes null.</param>
    public static void Write(LoraAdapters adapters, LlamaModel model, string folder, string? baseModelNameOrPath)
    {
        Directory.CreateDirectory(folder);
        foreach (string name in new[] { PeftAdapterConfig.FileName, WeightsFileName })
            if (File.Exists(Path.Combine(folder, name)))
                throw new UserErrorException($"{folder}: already holds {name}; write the adapter into a new or empty folder.");

        var writer = new SafetensorsWriter();
        foreach (NamedParameter parameter in adapters.Parameters)
            writer.Add(TensorPrefix + parameter.Name, SafetensorsDType.F32, parameter.Spec.Shape,
                stream => LlamaExporter.WriteTensor(parameter.Tensor, DType.Float32, stream));
        var byName = model.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        foreach (string name in adapters.TrainableBaseParameterNames)
        {
            NamedParameter parameter = byName[name];
            writer.Add(TensorPrefix + name, SafetensorsDType.F32, parameter.Spec.Shape, stream =>
            {
                using StageWeights weights = model.UseWeights(parameter);
                LlamaExporter.WriteTensor(weights[parameter], DType.Float32, stream);
            });
        }
        writer.WriteFile(Path.Combine(folder, WeightsFileName));

        string configPath = Path.Combine(folder, PeftAdapterConfig.FileName);
        string temporary = configPath + ".tmp";
        using (var stream = new FileStream(temporary, FileMode.Create, FileAccess.Write))
        using (var text = new StreamWriter(stream))
        {
            text.Write(PeftAdapterConfig.ToText(adapters.Config, baseModelNameOrPath));
            text.Flush();
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, configPath, overwrite: true);
    }
}
