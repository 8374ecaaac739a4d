using FineTune.IO.Safetensors;
using FineTune.Torch;

namespace FineTune.Trainer.Models.Lora;

/// <summary>
/// Loads a PEFT LoRA adapter folder (adapter_config.json + adapter_model.safetensors, as PEFT's save_pretrained
/// or <see cref="PeftAdapterWriter"/> writes it) for a given base model, to evaluate it, merge it or continue
/// training it. Strict: the file must hold lora_A (r, in) and lora_B (out, r) for every target projection of
/// every layer of this model and, for each module in modules_to_save, its full weights, and nothing else; a
/// missing, misshapen or unexpected tensor is a one-sentence user error naming it. A and B are read into
/// float32 (whatever their dtype on disk) on the model's device. The weights of modules_to_save replace the
/// model's own parameters (converted to the model's dtype) and stay resident, also in a model opened lazily.
/// reference: peft utils/save_and_load.py set_peft_model_state_dict, load_peft_weights.
/// </summary>
public static class PeftAdapterReader
{
    /// <param name="folder">The adapter folder.</param>
    /// <param name="model">The base model the adapter was trained on (its shapes are checked).</param>
    /// <param name="seed">The seed of the dropout masks if training continues (training.seed).</param>
    /// <param name="dropout">The dropout to train with; null keeps the file's lora_dropout.</param>
    public static LoraAdapters Load(string folder, LlamaModel model, long seed = 0, double? dropout = null)
    {
        var (config, _) = PeftAdapterConfig.Read(folder);
        if (dropout is double p)
            config = config with { Dropout = p };
        string path = Path.Combine(folder, PeftAdapterWriter.WeightsFileName);
        if (!File.Exists(path))
        {
            string hint = File.Exists(Path.Combine(folder, "adapter_model.bin"))
                ? "it has adapter_model.bin (a pickle), which FineTune does not read; re-save the adapter with safe_serialization=True"
                : "give the folder PEFT's save_pretrained wrote";
            throw new UserErrorException($"{folder} holds no {PeftAdapterWriter.WeightsFileName}; {hint}.");
        }
        using SafetensorsFile file = SafetensorsFile.Open(path);
        var expected = ExpectedTensors(model, config);
        CheckNames(file, expected, path);

        var adapters = new List<LoraAdapter>();
        var extras = new List<(NamedParameter Parameter, Tensor Tensor)>();
        try
        {
            for (int layer = 0; layer < model.Config.LayerCount; layer++)
            {
                foreach (string module in config.Targets)
                {
                    string name = LoraTargets.ModuleName(layer, module);
                    Tensor a = Read(file, expected, name + ".lora_A.weight", DType.Float32, model.Device);
                    Tensor b;
                    try
                    {
                        b = Read(file, expected, name + ".lora_B.weight", DType.Float32, model.Device);
                    }
                    catch
                    {
                        a.Dispose();
                        throw;
                    }
                    adapters.Add(LoraAdapter.FromTensors(model.Config, layer, module, a, b, config.Scale));
                }
            }
            var byName = model.Parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
            foreach (string name in LoraTrainableModules.ParameterNames(model.Config, config.Trainable))
                extras.Add((byName[name], Read(file, expected, name, model.DType, model.Device)));
        }
        catch
        {
            foreach (LoraAdapter adapter in adapters)
                adapter.Dispose();
            foreach (var (_, tensor) in extras)
                tensor.Dispose();
            throw;
        }
        // Only now, with every tensor read, is the model changed: a failed load leaves it as it was.
        foreach (var (parameter, tensor) in extras)
            parameter.Tensor = tensor;
        return new LoraAdapters(model.Config, config, adapters, seed);
    }

    /// <summary>Every tensor the file must hold (PEFT name -> our name and shape).</summary>
    private static Dictionary<string, ParameterSpec> ExpectedTensors(LlamaModel model, LoraConfig config)
    {
        var expected = new Dictionary<string, ParameterSpec>(StringComparer.Ordinal);
        for (int layer = 0; layer < model.Config.LayerCount; layer++)
        {
            foreach (string module in config.Targets)
            {
                var (inFeatures, outFeatures) = LoraTargets.Features(model.Config, module);
                string name = LoraTargets.ModuleName(layer, module);
                expected[PeftAdapterWriter.TensorPrefix + name + ".lora_A.weight"] = new(name + ".lora_A.weight", [config.Rank, inFeatures]);
                expected[PeftAdapterWriter.TensorPrefix + name + ".lora_B.weight"] = new(name + ".lora_B.weight", [outFeatures, config.Rank]);
            }
        }
        var specs = LlamaTensorNames.All(model.Config).ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (string name in LoraTrainableModules.ParameterNames(model.Config, config.Trainable))
            expected[PeftAdapterWriter.TensorPrefix + name] = specs[name];
        return expected;
    }

    private static void CheckNames(SafetensorsFile file, Dictionary<string, ParameterSpec> expected, string path)
    {
        foreach (var (peftName, spec) in expected)
        {
            if (!file.TryGetTensor(peftName, out SafetensorsTensorInfo info))
                throw new UserErrorException($"{path}: tensor {peftName} {spec.ShapeText} is missing; the adapter does not match adapter_config.json and this base model (layers, targets, rank or modules_to_save).");
            if (!info.Shape.SequenceEqual(spec.Shape))
                throw new UserErrorException($"{path}: tensor {peftName} has shape [{string.Join(", ", info.Shape)}] but this base model and r imply {spec.ShapeText}; the adapter was made for another model.");
            if (CheckpointDTypes.ToTorch(info.DType) is null)
                throw new UserErrorException($"{path}: tensor {peftName} is {info.DType}; adapters must be F32, BF16, F16 or F64.");
        }
        foreach (SafetensorsTensorInfo info in file.Tensors.OrderBy(t => t.Name, StringComparer.Ordinal))
            if (!expected.ContainsKey(info.Name))
                throw new UserErrorException($"{path}: unexpected tensor {info.Name}; FineTune loads LoRA A/B of {string.Join(", ", LoraTargets.Modules)} and the modules_to_save that adapter_config.json lists.");
    }

    private static Tensor Read(SafetensorsFile file, Dictionary<string, ParameterSpec> expected, string name, DType dtype, Device device)
    {
        string peftName = PeftAdapterWriter.TensorPrefix + name;
        // ReadTensor reads the tensor called spec.Name from the file: give it the PEFT name with our shape.
        Tensor tensor = LlamaCheckpointReader.ReadTensor(file, new ParameterSpec(peftName, expected[peftName].Shape), dtype, device);
        return TensorScope.Current?.Detach(tensor) ?? tensor;
    }
}
