using System.Text.Json;

namespace FineTune.IO.Safetensors;

/// <summary>
/// model.safetensors.index.json: which shard file holds each tensor, plus metadata.total_size (sum of tensor bytes).
/// Shards are named model-00001-of-00002.safetensors; a single-file checkpoint is model.safetensors with no index.
/// Some tools omit "metadata"; that is tolerated (<see cref="TotalByteCount"/> is then null).
/// reference: huggingface_hub serialization/_base.py (FILENAME_PATTERN, 5 GB default); FORMATS.md §2.2.
/// </summary>
public sealed class SafetensorsIndex
{
    public const string FileName = "model.safetensors.index.json";
    public const string SingleFileName = "model.safetensors";

    /// <summary>huggingface_hub's default max_shard_size "5GB" (decimal).</summary>
    public const long DefaultMaxShardByteCount = 5_000_000_000;

    public SafetensorsIndex(IReadOnlyDictionary<string, string> weightMap, long? totalByteCount)
    {
        WeightMap = weightMap;
        TotalByteCount = totalByteCount;
    }

    /// <summary>Tensor name to shard file name (relative to the index's directory).</summary>
    public IReadOnlyDictionary<string, string> WeightMap { get; }

    /// <summary>metadata.total_size when present.</summary>
    public long? TotalByteCount { get; }

    /// <summary>The distinct shard files, sorted.</summary>
    public IReadOnlyList<string> ShardFileNames => WeightMap.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();

    /// <summary>"model-00001-of-00003.safetensors" for shard 1 of 3 (1-based); "model.safetensors" when there is one shard.</summary>
    public static string ShardFileName(int shardNumber, int shardCount)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shardCount, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(shardNumber, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shardNumber, shardCount);
        return shardCount == 1 ? SingleFileName : $"model-{shardNumber:D5}-of-{shardCount:D5}.safetensors";
    }

    public static SafetensorsIndex Read(string path)
    {
        if (!File.Exists(path))
            throw new UserErrorException($"Safetensors index {path} does not exist; check the model directory.");
        // StrictJson's rule, with this file's sentences: regular, bounded, no comments, no key twice
        byte[] bytes = InputFile.ReadAllBytes(path, InputFile.ConfigLimitByteCount, FileName);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(InputFile.WithoutByteOrderMark(bytes), StrictJson.Options);
        }
        catch (JsonException exception)
        {
            throw new SafetensorsFormatException(path, $"the index is not well-formed JSON (line {exception.LineNumber + 1}: {StrictJson.Reason(exception)})", exception);
        }
        using (document)
        {
            if (StrictJson.FirstDuplicateKey(document.RootElement) is string key)
                throw new SafetensorsFormatException(path, $"the index has the key {key} twice, and which one counts is ambiguous");
            JsonElement root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out JsonElement map) || map.ValueKind != JsonValueKind.Object)
                throw new SafetensorsFormatException(path, "the index has no \"weight_map\" object");
            var weightMap = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (JsonProperty entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw new SafetensorsFormatException(path, $"weight_map entry '{entry.Name}' must be a file name string");
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || shard.Contains('/') || shard.Contains('\\') || shard == "..")
                    throw new SafetensorsFormatException(path, $"weight_map entry '{entry.Name}' names '{shard}', which is not a plain file name");
                if (!weightMap.TryAdd(entry.Name, shard))
                    throw new SafetensorsFormatException(path, $"weight_map lists tensor '{entry.Name}' twice");
            }
            long? total = null;
            if (root.TryGetProperty("metadata", out JsonElement metadata) && metadata.ValueKind == JsonValueKind.Object
                && metadata.TryGetProperty("total_size", out JsonElement totalElement))
            {
                if (totalElement.ValueKind != JsonValueKind.Number || !totalElement.TryGetInt64(out long value) || value < 0)
                    throw new SafetensorsFormatException(path, "metadata.total_size must be a non-negative integer");
                total = value;
            }
            return new SafetensorsIndex(weightMap, total);
        }
    }

    /// <summary>Writes the index as transformers does (2-space indent, keys sorted).</summary>
    public void Write(string path)
    {
        using var stream = new FileStream(path, FileMode.Create, FileAccess.Write);
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            writer.WriteStartObject();
            if (TotalByteCount is long total)
            {
                writer.WriteStartObject("metadata");
                writer.WriteNumber("total_size", total);
                writer.WriteEndObject();
            }
            writer.WriteStartObject("weight_map");
            foreach (KeyValuePair<string, string> entry in WeightMap.OrderBy(entry => entry.Key, StringComparer.Ordinal))
                writer.WriteString(entry.Key, entry.Value);
            writer.WriteEndObject();
            writer.WriteEndObject();
        }
        stream.WriteByte((byte)'\n');
    }
}
