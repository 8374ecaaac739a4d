using System.Globalization;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Checkpoints;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Recipes;
using FineTune.Trainer.Training.Adapters;

namespace FineTune.Trainer.Runs;

/// <summary>
/// `finetune export` of a LoRA run's checkpoint (a step_N folder holding adapter/ and base.json, or the run's
/// output_dir: its newest checkpoint, verified): the PEFT adapter folder as it is (adapter_config.json and
/// adapter_model.safetensors, float32), or with --merge the base named by base.json, checked against its recorded
/// CRC-32Cs first, written as an HF folder with W + (alpha / r) B A folded in, streamed one tensor at a time. A base
/// generated from model.config is generated again from the checkpoint's recipe and seed for the merge.
/// </summary>
public static class LoraExport
{
    /// <summary>The LoRA checkpoint <paramref name="source"/> names, verified; null when it is no LoRA run's checkpoint or run folder.</summary>
    public static CheckpointInfo? CheckpointOf(string source)
    {
        CheckpointInfo? checkpoint = null;
        string checkpoints = Path.Combine(source, "checkpoints");
        if (File.Exists(Path.Combine(source, CheckpointManifest.FileName)))
            checkpoint = CheckpointStore.Open(source);
        else if (!File.Exists(Path.Combine(source, LlamaConfigReader.FileName)) && Directory.Exists(checkpoints))
            checkpoint = new CheckpointStore(checkpoints).LoadLatest();
        return checkpoint is not null && LoraCheckpoints.IsLora(checkpoint) ? checkpoint : null;
    }

    /// <summary>Writes the export into <paramref name="destination"/>; returns the line the CLI prints.</summary>
    /// <param name="dtype">--dtype for the merged weights (null: the base's torch_dtype, else f32); the adapter is always float32.</param>
    public static string Export(CheckpointInfo checkpoint, string destination, bool merge, string? dtype, long maxShardByteCount)
    {
        string adapterFolder = checkpoint.FilePath(LoraCheckpoints.AdapterFolder);
        if (!merge)
        {
            if (dtype is not null)
                throw new UserErrorException("--dtype applies to merged weights; a PEFT adapter is exported as saved (float32). Drop --dtype, or add --merge.");
            CopyAdapter(adapterFolder, destination);
            return $"wrote {destination}: the PEFT adapter of {checkpoint.DirectoryPath} ({PeftAdapterConfig.FileName}, {PeftAdapterWriter.WeightsFileName})";
        }
        if (maxShardByteCount <= 0)
            throw new UserErrorException("--max-shard-gb must be positive.");
        BaseFingerprint recorded = LoraCheckpoints.RecordedBase(checkpoint);
        using var scope = TensorScope.Enter();
        using LlamaModel model = OpenBase(checkpoint, recorded, out string? tokenizerSource);
        DType diskType = CheckpointDTypes.Parse(dtype ?? model.Config.TorchDType ?? "f32", dtype is null ? "the base's torch_dtype" : "--dtype");
        using LoraAdapters adapters = PeftAdapterReader.Load(adapterFolder, model);
        LlamaExporter.Export(model, destination, diskType, maxShardByteCount, tokenizerSourceFolder: tokenizerSource, merge: adapters);
        return string.Create(CultureInfo.InvariantCulture,
            $"wrote {destination}: {model.Parameters.Count} tensors, {model.ParameterCount:N0} parameters as {diskType.Name()}, the base {recorded.Source} with the adapter of {checkpoint.DirectoryPath} merged into {adapters.Adapters.Count} weights");
    }

    /// <summary>
    /// The base: the recorded folder in float32 (so W + (alpha / r) B A is rounded once, to the disk dtype), opened
    /// lazily after its files are checked against the record; or the generated base made again.
    /// </summary>
    private static LlamaModel OpenBase(CheckpointInfo checkpoint, BaseFingerprint recorded, out string? tokenizerSource)
    {
        if (recorded.IsFolder)
        {
            BaseFingerprint now = BaseFingerprint.OfFolderFiles(recorded.Source, recorded.Files.Select(f => f.Name));
            if (now.DifferenceFrom(recorded) is string difference)
                throw new UserErrorException($"Cannot merge {checkpoint.DirectoryPath} into its base: {difference}.");
            tokenizerSource = recorded.Source;
            return LlamaModel.Open(recorded.Source, DType.Float32, Device.Cpu);
        }
        // a generated base is the seed's draws rounded to the run's dtype: create it in that dtype (the merge widens W
        // to float32 before adding B A, so it is still rounded once, to the disk dtype)
        Recipe recipe = checkpoint.ReadRecipe();
        tokenizerSource = null;
        DType trained = recipe.Training.Precision == Precision.Fp32 ? DType.Float32 : DType.BFloat16;
        return LlamaModel.Create(RunSetup.ConfigOf(recipe, null), recipe.Training.Seed, trained, Device.Cpu);
    }

    /// <summary>The PEFT folder's two files into <paramref name="destination"/> (created; refused when it already holds an adapter), each through a temporary name.</summary>
    private static void CopyAdapter(string adapterFolder, string destination)
    {
        string[] names = [PeftAdapterConfig.FileName, PeftAdapterWriter.WeightsFileName];
        Directory.CreateDirectory(destination);
        foreach (string name in names)
            if (File.Exists(Path.Combine(destination, name)))
                throw new UserErrorException($"{destination}: already holds {name}; export into a new or empty folder.");
        foreach (string name in names)
        {
            string target = Path.Combine(destination, name), temporary = target + ".tmp";
            File.Copy(Path.Combine(adapterFolder, name), temporary, overwrite: true);
            using (var stream = new FileStream(temporary, FileMode.Open, FileAccess.ReadWrite))
                stream.Flush(flushToDisk: true);
            File.Move(temporary, target);
        }
    }
}
