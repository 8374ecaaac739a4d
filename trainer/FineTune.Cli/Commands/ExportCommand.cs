using System.CommandLine;
using System.Globalization;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;
using FineTune.Trainer.Models.Lora;
using FineTune.Trainer.Runs;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune export SOURCE OUT_DIR [--dtype bf16|f16|f32] [--max-shard-gb X]` (or --model SOURCE --out OUT_DIR):
/// SOURCE is an HF Llama-family folder, a training checkpoint (a step_N folder, verified against its manifest
/// first) or a run's output_dir (its newest checkpoint). Reads the weights (checking every tensor) and writes an HF
/// folder, converting the dtype and re-sharding; tokenizer and generation files are copied.
/// `--adapter PEFT_DIR --merge` folds a LoRA adapter into the weights it adapts (W + (alpha / r) B A in float32):
/// the base is opened lazily and streamed one tensor at a time, so it need not fit in memory.
/// A LoRA run's checkpoint (or run folder) exports its PEFT adapter, or with --merge its base with the adapter folded in (<see cref="LoraExport"/>).
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var sourceArgument = new Argument<string?>("SOURCE") { Description = "HF model folder, checkpoint folder (step_N) or run output_dir.", Arity = ArgumentArity.ZeroOrOne };
        var outArgument = new Argument<string?>("OUT_DIR") { Description = "New folder to write (must not already hold a model).", Arity = ArgumentArity.ZeroOrOne };
        var model = new Option<string?>("--model") { Description = "Same as SOURCE." };
        var output = new Option<string?>("--out") { Description = "Same as OUT_DIR." };
        var dtype = new Option<string?>("--dtype") { Description = "Dtype on disk: bf16, f16 or f32 (default: as config.json's torch_dtype, else f32)." };
        var maxShard = new Option<double>("--max-shard-gb")
        {
            Description = "Shard the weights above this many GB (10^9 bytes) per file.",
            DefaultValueFactory = _ => SafetensorsIndex.DefaultMaxShardByteCount / 1e9,
        };

        var adapter = new Option<string?>("--adapter") { Description = "A PEFT LoRA adapter folder to merge into SOURCE (with --merge)." };
        var merge = new Option<bool>("--merge") { Description = "Write SOURCE with --adapter merged in: W + (alpha / r) B A for every adapted weight." };

        var command = new Command("export", "Write an HF model folder from a checkpoint, a run or another HF folder: convert its dtype, re-shard, copy its tokenizer files.");
        command.Arguments.Add(sourceArgument);
        command.Arguments.Add(outArgument);
        foreach (Option option in new Option[] { model, output, dtype, maxShard, adapter, merge })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            string source = parsed.GetValue(sourceArgument) ?? parsed.GetValue(model)
                ?? throw new UserErrorException("export needs a SOURCE: an HF model folder, a checkpoint folder or a run's output_dir.");
            string destination = parsed.GetValue(outArgument) ?? parsed.GetValue(output)
                ?? throw new UserErrorException("export needs an OUT_DIR: the new folder to write.");
            // a run being trained prunes and replaces its checkpoints: export holds the run's lock while it reads
            using RunFolderLock? runLock = CheckpointExportSource.RunFolderOf(source) is string run ? RunFolderLock.Acquire(run, "the run folder") : null;
            if (LoraExport.CheckpointOf(source) is { } lora) // a LoRA run's checkpoint: its PEFT adapter, or --merge into its base
            {
                if (parsed.GetValue(adapter) is not null)
                    throw new UserErrorException($"{source} is a LoRA checkpoint and holds its adapter; drop --adapter (add --merge to write its base with the adapter merged in).");
                Console.WriteLine(LoraExport.Export(lora, destination, parsed.GetValue(merge), parsed.GetValue(dtype), (long)(parsed.GetValue(maxShard) * 1e9)));
                return ExitCodes.Success;
            }
            source = CheckpointExportSource.Resolve(source);
            double shardGb = parsed.GetValue(maxShard);
            if (!(shardGb > 0))
                throw new UserErrorException($"--max-shard-gb {shardGb.ToString(CultureInfo.InvariantCulture)} must be positive.");
            LlamaConfig config = LlamaConfigReader.ReadFolder(source);
            string dtypeText = parsed.GetValue(dtype) ?? config.TorchDType ?? "f32";
            DType diskType = CheckpointDTypes.Parse(dtypeText, parsed.GetValue(dtype) is null ? $"{source}/config.json torch_dtype" : "--dtype");

            string? adapterFolder = parsed.GetValue(adapter);
            if (parsed.GetValue(merge) != (adapterFolder is not null))
                throw new UserErrorException(adapterFolder is null
                    ? "--merge needs --adapter PEFT_DIR: the LoRA adapter to merge into SOURCE."
                    : "--adapter is only used with --merge (a PEFT adapter folder is already the exported adapter); add --merge to write SOURCE with the adapter merged in.");

            using var scope = TensorScope.Enter();
            if (adapterFolder is not null)
            {
                // float32 so that W + (alpha / r) B A is rounded once, to the disk dtype, as it is written.
                using var opened = LlamaModel.Open(source, DType.Float32, Device.Cpu);
                using LoraAdapters adapters = PeftAdapterReader.Load(adapterFolder, opened);
                LlamaExporter.Export(opened, destination, diskType, (long)(shardGb * 1e9), tokenizerSourceFolder: source, merge: adapters);
                Console.WriteLine($"wrote {destination}: {opened.Parameters.Count} tensors, {opened.ParameterCount:N0} parameters as {diskType.Name()}, with {adapterFolder} merged into {adapters.Adapters.Count} weights");
                return ExitCodes.Success;
            }
            using var loaded = LlamaModel.Load(source, diskType, Device.Cpu);
            LlamaExporter.Export(loaded, destination, diskType, (long)(shardGb * 1e9), tokenizerSourceFolder: source);
            // generate on the export formats prompts and finds the tokenizer as the run did
            if (FineTune.Trainer.Generation.GenerationSource.TrainingRecipeOf(source) is string recipe)
                File.Copy(recipe, Path.Combine(destination, FineTune.Trainer.Generation.GenerationSource.ExportedRecipeFileName));
            Console.WriteLine($"wrote {destination}: {loaded.Parameters.Count} tensors, {loaded.ParameterCount:N0} parameters as {diskType.Name()}");
            return ExitCodes.Success;
        });
        return command;
    }
}
