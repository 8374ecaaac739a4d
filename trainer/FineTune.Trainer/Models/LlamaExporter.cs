using System.Runtime.InteropServices;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using FineTune.Trainer.Models.Lora;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Writes a model as an HF folder that transformers and <see cref="LlamaModel.Load"/> read: config.json
/// (<see cref="LlamaConfigWriter"/>), the weights under their HF names in the requested dtype (model.safetensors,
/// or model-0000i-of-0000n.safetensors + model.safetensors.index.json when they exceed the shard limit, split as
/// huggingface_hub does), and the tokenizer and generation files of the folder the model came from. Tied
/// embeddings are written once (no lm_head.weight), as transformers saves them. Tensor bytes are streamed from the
/// device in bounded chunks; each file is written to a temporary name and renamed. With LoRA adapters to merge,
/// each adapted weight is written as W + (alpha / r) B A, computed in float32 one tensor at a time.
/// </summary>
public static class LlamaExporter
{
    /// <summary>Files copied from the source folder: what transformers' tokenizers and generate() read.</summary>
    public static readonly IReadOnlyList<string> TokenizerFileNames =
    [
        "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model", "vocab.json",
        "merges.txt", "added_tokens.json", "generation_config.json", "chat_template.jinja", "chat_template.json",
    ];

    private const int ChunkElementCount = 16 << 20;

    /// <param name="model">The model to write.</param>
    /// <param name="folder">Output folder; created if missing, and must not already hold a config.json or weights.</param>
    /// <param name="dtype">Dtype on disk (bf16, f16 or f32); null keeps the model's dtype.</param>
    /// <param name="maxShardByteCount">Above this many weight bytes per file the weights are sharded.</param>
    /// <param name="tokenizerSourceFolder">Folder to copy tokenizer files from (usually the one the model was loaded from); null copies none.</param>
    /// <param name="merge">LoRA adapters of this model to fold into the weights they adapt; null writes the weights as they are.</param>
    public static void Export(LlamaModel model, string folder, DType? dtype = null,
        long maxShardByteCount = SafetensorsIndex.DefaultMaxShardByteCount, string? tokenizerSourceFolder = null,
        LoraAdapters? merge = null)
    {
        DType diskType = dtype ?? model.DType;
        SafetensorsDType stType = CheckpointDTypes.ToSafetensors(diskType);
        PrepareFolder(folder);

        IReadOnlyList<NamedParameter> parameters = model.Parameters;
        var byName = parameters.ToDictionary(p => p.Name, StringComparer.Ordinal);
        IReadOnlyList<IReadOnlyList<string>> shards = SafetensorsShardPlanner.Plan(
            parameters.Select(p => (p.Name, p.Spec.ElementCount * diskType.ElementByteCount())), maxShardByteCount);

        var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < shards.Count; i++)
        {
            string fileName = SafetensorsIndex.ShardFileName(i + 1, shards.Count);
            var writer = new SafetensorsWriter();
            foreach (string name in shards[i])
            {
                NamedParameter parameter = byName[name];
                LoraAdapter? adapter = merge?.ForWeight(name);
                writer.Add(name, stType, parameter.Spec.Shape, stream =>
                {
                    if (adapter is null)
                    {
                        // in row-major pieces where the weights come in pieces (a blocked embedding), one in memory at a time
                        foreach (var (_, values) in model.ReadChunks(parameter))
                            WriteTensor(values, diskType, stream);
                        return;
                    }
                    using StageWeights weights = model.UseWeights(parameter);
                    using (TensorScope.Enter()) // frees W' (out, in) f32 before the next tensor
                        WriteTensor(adapter.MergeInto(weights[parameter]), diskType, stream);
                });
                weightMap[name] = fileName;
            }
            writer.WriteFile(Path.Combine(folder, fileName));
        }
        if (shards.Count > 1)
        {
            long total = parameters.Sum(p => p.Spec.ElementCount * diskType.ElementByteCount());
            new SafetensorsIndex(weightMap, total).Write(Path.Combine(folder, SafetensorsIndex.FileName));
        }
        LlamaConfigWriter.Write(model.Config, diskType, Path.Combine(folder, LlamaConfigReader.FileName));
        if (tokenizerSourceFolder is not null)
            CopyTokenizerFiles(tokenizerSourceFolder, folder);
    }

    private static void PrepareFolder(string folder)
    {
        Directory.CreateDirectory(folder);
        string[] clashing = Directory.GetFiles(folder)
            .Select(Path.GetFileName)
            .Where(name => name == LlamaConfigReader.FileName || name!.EndsWith(".safetensors", StringComparison.Ordinal)
                || name == SafetensorsIndex.FileName)
            .ToArray()!;
        if (clashing.Length > 0)
            throw new UserErrorException($"{folder}: already holds {clashing[0]}; export into a new or empty folder.");
    }

    private static void CopyTokenizerFiles(string source, string destination)
    {
        if (Path.GetFullPath(source) == Path.GetFullPath(destination))
            return;
        foreach (string name in TokenizerFileNames)
        {
            string from = Path.Combine(source, name);
            if (File.Exists(from))
                File.Copy(from, Path.Combine(destination, name), overwrite: true);
        }
    }

    /// <summary>Streams the tensor's elements, converted to <paramref name="diskType"/> on its device, in row-major order.</summary>
    internal static void WriteTensor(Tensor tensor, DType diskType, Stream stream)
    {
        using var scope = TensorScope.Enter();
        using var noGrad = NoGrad();
        Tensor flat = tensor.Detach().To(diskType).Reshape(-1);
        long count = flat.NumElements;
        byte[] buffer = new byte[(int)Math.Min(count, ChunkElementCount) * diskType.ElementByteCount()];
        for (long start = 0; start < count; start += ChunkElementCount)
        {
            long n = Math.Min(ChunkElementCount, count - start);
            Span<byte> bytes = buffer.AsSpan(0, checked((int)(n * diskType.ElementByteCount())));
            using Tensor part = scope.Detach(flat.Narrow(0, start, n));
            switch (diskType)
            {
                case DType.Float32: part.CopyTo(MemoryMarshal.Cast<byte, float>(bytes)); break;
                case DType.BFloat16: part.CopyTo(MemoryMarshal.Cast<byte, ushort>(bytes)); break;
                case DType.Float16: part.CopyTo(MemoryMarshal.Cast<byte, Half>(bytes)); break;
                case DType.Float64: part.CopyTo(MemoryMarshal.Cast<byte, double>(bytes)); break;
                default: throw new InvalidOperationException($"no export for {diskType}");
            }
            stream.Write(bytes);
        }
    }
}
