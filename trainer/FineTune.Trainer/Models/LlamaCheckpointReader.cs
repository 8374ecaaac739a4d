using System.Runtime.InteropServices;
using FineTune.IO.Safetensors;
using FineTune.Torch;
using static FineTune.Torch.Torch;

namespace FineTune.Trainer.Models;

/// <summary>
/// Loads the weights of an HF model folder: model.safetensors, or the shards listed by
/// model.safetensors.index.json. Every file is opened and its header validated (by the io reader) and the full
/// set of names and shapes checked against config.json before any tensor is read, so a bad checkpoint fails
/// fast with a message naming the file and the first missing, mismatched or unexpected tensor. Tensors are read
/// in bounded chunks into a CPU tensor of the on-disk dtype and then converted by libtorch (round-to-nearest-even,
/// as torch's .to) to the requested dtype and device.
/// </summary>
public static class LlamaCheckpointReader
{
    // Bytes read per chunk: a bound on the extra managed memory a tensor load needs, whatever the tensor's size.
    private const int ChunkByteCount = 64 << 20;

    /// <summary>Reads the tensors named by <see cref="LlamaTensorNames.All"/>, each converted to dtype on device.</summary>
    public static Dictionary<string, Tensor> Read(string folder, LlamaConfig config, DType dtype, Device device)
    {
        List<SafetensorsFile> files = [];
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            Dictionary<string, SafetensorsFile> byTensor = OpenChecked(folder, config, files);
            foreach (ParameterSpec spec in LlamaTensorNames.All(config))
                result[spec.Name] = ReadTensor(byTensor[spec.Name], spec, dtype, device);
            return result;
        }
        catch
        {
            foreach (Tensor tensor in result.Values)
                tensor.Dispose();
            throw;
        }
        finally
        {
            foreach (SafetensorsFile file in files)
                file.Dispose();
        }
    }

    /// <summary>
    /// Opens the folder's files and checks names and shapes against <paramref name="config"/> without reading any
    /// tensor; the caller disposes <paramref name="opened"/>. Returns the file holding each tensor.
    /// </summary>
    internal static Dictionary<string, SafetensorsFile> OpenChecked(string folder, LlamaConfig config, List<SafetensorsFile> opened)
    {
        Dictionary<string, SafetensorsFile> byTensor = OpenFiles(folder, opened);
        var found = byTensor.ToDictionary(
            pair => pair.Key,
            pair => (pair.Value.GetTensor(pair.Key).Shape.ToArray(), pair.Value.Path),
            StringComparer.Ordinal);
        LlamaTensorNames.CheckComplete(config, found, folder);
        foreach (ParameterSpec spec in LlamaTensorNames.All(config))
            DiskType(byTensor[spec.Name], spec.Name); // an unloadable dtype is refused at open, not at first use
        if (config.TieWordEmbeddings && byTensor.TryGetValue(LlamaTensorNames.LmHead, out SafetensorsFile? headFile))
            CheckTiedHead(folder, byTensor[LlamaTensorNames.Embedding], headFile);
        return byTensor;
    }

    /// <summary>
    /// tie_word_embeddings true, yet the file has its own lm_head.weight: many exports save the tied head too (the
    /// same bytes), which is fine; a different head would silently be replaced by the embedding, changing the model.
    /// </summary>
    private static void CheckTiedHead(string folder, SafetensorsFile embeddingFile, SafetensorsFile headFile)
    {
        SafetensorsTensorInfo embedding = embeddingFile.GetTensor(LlamaTensorNames.Embedding), head = headFile.GetTensor(LlamaTensorNames.LmHead);
        string refusal = $"{folder}: config.json says tie_word_embeddings true, but {LlamaTensorNames.LmHead} in {headFile.Path} is not the embedding's copy ({{0}}); set tie_word_embeddings to false to train the file's own head, or remove the tensor.";
        if (embedding.DType != head.DType || !embedding.Shape.SequenceEqual(head.Shape))
            throw new UserErrorException(string.Format(System.Globalization.CultureInfo.InvariantCulture, refusal, $"{head.DType} [{string.Join(", ", head.Shape)}] against {embedding.DType} [{string.Join(", ", embedding.Shape)}]"));
        var a = new byte[(int)Math.Min(ChunkByteCount, embedding.ByteCount)];
        var b = new byte[a.Length];
        for (long offset = 0; offset < embedding.ByteCount; offset += a.Length)
        {
            int count = (int)Math.Min(a.Length, embedding.ByteCount - offset);
            embeddingFile.ReadTensorBytes(LlamaTensorNames.Embedding, offset, a.AsSpan(0, count));
            headFile.ReadTensorBytes(LlamaTensorNames.LmHead, offset, b.AsSpan(0, count));
            if (!a.AsSpan(0, count).SequenceEqual(b.AsSpan(0, count)))
                throw new UserErrorException(string.Format(System.Globalization.CultureInfo.InvariantCulture, refusal, $"their bytes differ from offset {offset}"));
        }
    }

    private static DType DiskType(SafetensorsFile file, string name)
    {
        SafetensorsTensorInfo info = file.GetTensor(name);
        return CheckpointDTypes.ToTorch(info.DType)
            ?? throw new UserErrorException($"{file.Path}: tensor {name} is {info.DType}; FineTune loads F32, BF16, F16 and F64 weights.");
    }

    /// <summary>Opens the single file or every shard; maps each tensor name to the file holding it.</summary>
    private static Dictionary<string, SafetensorsFile> OpenFiles(string folder, List<SafetensorsFile> opened)
    {
        if (!Directory.Exists(folder))
            throw new UserErrorException($"{folder}: model folder not found.");
        string indexPath = Path.Combine(folder, SafetensorsIndex.FileName);
        string singlePath = Path.Combine(folder, SafetensorsIndex.SingleFileName);
        var byTensor = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
        if (File.Exists(indexPath))
        {
            SafetensorsIndex index = SafetensorsIndex.Read(indexPath);
            var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (string shardName in index.ShardFileNames)
            {
                string shardPath = Path.Combine(folder, shardName);
                if (shardName.Contains('/') || shardName.Contains('\\') || !File.Exists(shardPath))
                    throw new UserErrorException($"{indexPath}: lists shard {shardName}, which is not in {folder}; the checkpoint is incomplete.");
                SafetensorsFile shard = SafetensorsFile.Open(shardPath);
                opened.Add(shard);
                shards[shardName] = shard;
            }
            foreach (var (name, shardName) in index.WeightMap.OrderBy(pair => pair.Key, StringComparer.Ordinal))
            {
                SafetensorsFile shard = shards[shardName];
                if (!shard.TryGetTensor(name, out _))
                    throw new UserErrorException($"{indexPath}: says {shardName} holds tensor {name}, but {shard.Path} does not.");
                byTensor[name] = shard;
            }
            return byTensor;
        }
        if (!File.Exists(singlePath))
            throw new UserErrorException(
                $"{folder}: holds neither {SafetensorsIndex.SingleFileName} nor {SafetensorsIndex.FileName}; FineTune loads safetensors checkpoints only.");
        SafetensorsFile single = SafetensorsFile.Open(singlePath);
        opened.Add(single);
        foreach (SafetensorsTensorInfo info in single.Tensors)
            byTensor[info.Name] = single;
        return byTensor;
    }

    /// <summary>One tensor of an opened checkpoint, converted to <paramref name="dtype"/> on <paramref name="device"/>.</summary>
    internal static Tensor ReadTensor(SafetensorsFile file, ParameterSpec spec, DType dtype, Device device)
    {
        SafetensorsTensorInfo info = file.GetTensor(spec.Name);
        DType diskType = DiskType(file, spec.Name);
        using var scope = TensorScope.Enter();
        Tensor host = Empty(spec.Shape, diskType);
        Tensor flat = host.View(spec.ElementCount);
        int elementBytes = diskType.ElementByteCount();
        long chunkElements = ChunkByteCount / elementBytes;
        byte[] buffer = new byte[(int)Math.Min(info.ByteCount, (long)ChunkByteCount)];
        for (long start = 0; start < spec.ElementCount; start += chunkElements)
        {
            long count = Math.Min(chunkElements, spec.ElementCount - start);
            Span<byte> bytes = buffer.AsSpan(0, checked((int)(count * elementBytes)));
            file.ReadTensorBytes(spec.Name, start * elementBytes, bytes);
            using Tensor part = scope.Detach(flat.Narrow(0, start, count));
            CopyInto(part, diskType, bytes);
        }
        return host.To(device, dtype).MoveToOuterScope();
    }

    private static void CopyInto(Tensor destination, DType diskType, ReadOnlySpan<byte> bytes)
    {
        // Safetensors data is little-endian, as is every platform .NET and libtorch run on here.
        switch (diskType)
        {
            case DType.Float32: destination.CopyFrom(MemoryMarshal.Cast<byte, float>(bytes)); break;
            case DType.BFloat16: destination.CopyFrom(MemoryMarshal.Cast<byte, ushort>(bytes)); break;
            case DType.Float16: destination.CopyFrom(MemoryMarshal.Cast<byte, Half>(bytes)); break;
            case DType.Float64: destination.CopyFrom(MemoryMarshal.Cast<byte, double>(bytes)); break;
            default: throw new InvalidOperationException($"no copy for {diskType}");
        }
    }
}
