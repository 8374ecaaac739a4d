using System.CommandLine;
using System.Globalization;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models;

namespace FineTune.Cli.Commands;

/// <summary>
/// `finetune export --model DIR --out DIR [--dtype bf16|f16|f32] [--max-shard-gb X]`: reads an HF Llama-family
/// folder (checking every tensor) and writes it again as an HF folder, converting the dtype and re-sharding;
/// tokenizer and generation files are copied.
/// </summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "HF model folder to read.", Required = true };
        var output = new Option<string>("--out") { Description = "New folder to write (must not already hold a model).", Required = true };
        var dtype = new Option<string?>("--dtype") { Description = "Dtype on disk: bf16, f16 or f32 (default: as config.json's torch_dtype, else f32)." };
        var maxShard = new Option<double>("--max-shard-gb")
        {
            Description = "Shard the weights above this many GB (10^9 bytes) per file.",
            DefaultValueFactory = _ => SafetensorsIndex.DefaultMaxShardByteCount / 1e9,
        };

        var command = new Command("export", "Write an HF model folder again: convert its dtype, re-shard, copy its tokenizer files.");
        foreach (Option option in new Option[] { model, output, dtype, maxShard })
            command.Options.Add(option);
        command.SetAction(parsed =>
        {
            string source = parsed.GetValue(model)!, destination = parsed.GetValue(output)!;
            double shardGb = parsed.GetValue(maxShard);
            if (!(shardGb > 0))
                throw new UserErrorException($"--max-shard-gb {shardGb.ToString(CultureInfo.InvariantCulture)} must be positive.");
            LlamaConfig config = LlamaConfigReader.ReadFolder(source);
            string dtypeText = parsed.GetValue(dtype) ?? config.TorchDType ?? "f32";
            DType diskType = CheckpointDTypes.Parse(dtypeText, parsed.GetValue(dtype) is null ? $"{source}/config.json torch_dtype" : "--dtype");

            using var scope = TensorScope.Enter();
            using var loaded = LlamaModel.Load(source, diskType, Device.Cpu);
            LlamaExporter.Export(loaded, destination, diskType, (long)(shardGb * 1e9), tokenizerSourceFolder: source);
            Console.WriteLine($"wrote {destination}: {loaded.Parameters.Count} tensors, {loaded.ParameterCount:N0} parameters as {diskType.Name()}");
            return ExitCodes.Success;
        });
        return command;
    }
}
