using System.Text.Json.Serialization;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// One file of a checkpoint as the manifest records it: path relative to the checkpoint folder ('/'-separated),
/// length, CRC-32C. A file of tens of GB whose parts carry CRCs of their own (the optimizer states, CRC'd per
/// extent in optimizer-state.json) names that file in <see cref="VerifiedBy"/> instead: its length is checked here,
/// and its contents as it is read (once) by the resume, so nothing reads it a second time just to check it.
/// </summary>
public sealed record CheckpointFileEntry(
    [property: JsonPropertyName("path")] string RelativePath,
    [property: JsonPropertyName("byte_count")] long ByteCount,
    [property: JsonPropertyName("crc32c")] uint Crc32C,
    [property: JsonPropertyName("verified_by"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? VerifiedBy = null);
