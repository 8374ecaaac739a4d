using System.Text.Json.Serialization;

namespace FineTune.Trainer.Checkpoints;

/// <summary>One file of a checkpoint as the manifest records it: path relative to the checkpoint folder ('/'-separated), length, CRC-32C.</summary>
public sealed record CheckpointFileEntry(
    [property: JsonPropertyName("path")] string RelativePath,
    [property: JsonPropertyName("byte_count")] long ByteCount,
    [property: JsonPropertyName("crc32c")] uint Crc32C);
