using System.Text.Json.Serialization;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// One file of a LoRA run's frozen base as <see cref="BaseFingerprint"/> records it: its name relative to the base
/// folder, its size and its CRC-32C (the value `crc32c FILE` prints). A generated base has one pseudo-file: its
/// weights as stored, in layout order.
/// </summary>
public sealed record BaseFileHash(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("bytes")] long ByteCount,
    [property: JsonPropertyName("crc32c")] uint Crc32C);
