using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FineTune.Trainer.Checkpoints;

/// <summary>
/// manifest.json: magic, version, step, and every other file of the checkpoint with its byte count and CRC-32C.
/// The manifest protects itself too: the file is {"manifest_crc32c": C, "manifest": BODY} where C is the CRC-32C
/// of BODY's exact UTF-8 text, so a flipped byte anywhere in it is detected rather than read as a wrong size.
/// </summary>
public sealed record CheckpointManifest
{
    public const string FileName = "manifest.json";
    public const string ExpectedMagic = "finetune-checkpoint";
    public const int CurrentVersion = 2; // 2: an entry may be verified by the extent CRCs of another file (verified_by)

    [JsonPropertyName("magic")] public string Magic { get; init; } = ExpectedMagic;
    [JsonPropertyName("version")] public int Version { get; init; } = CurrentVersion;
    [JsonPropertyName("step")] public long Step { get; init; }
    [JsonPropertyName("files")] public IReadOnlyList<CheckpointFileEntry> Files { get; init; } = [];

    private static readonly JsonSerializerOptions s_options = new() { WriteIndented = true };

    internal byte[] Serialize()
    {
        string body = JsonSerializer.Serialize(this, s_options);
        uint crc = IO.Crc32C.Compute(Encoding.UTF8.GetBytes(body));
        return Encoding.UTF8.GetBytes($"{{\n\"manifest_crc32c\": {crc},\n\"manifest\": {body}\n}}\n");
    }

    /// <summary>Parses and self-checks a manifest; null with <paramref name="problem"/> set when it is damaged.</summary>
    internal static CheckpointManifest? TryParse(byte[] bytes, out string? problem)
    {
        problem = null;
        try
        {
            using JsonDocument document = IO.StrictJson.Parse(bytes, FileName);
            JsonElement root = document.RootElement;
            uint expected = root.GetProperty("manifest_crc32c").GetUInt32();
            JsonElement body = root.GetProperty("manifest");
            if (IO.Crc32C.Compute(Encoding.UTF8.GetBytes(body.GetRawText())) != expected)
            {
                problem = "its CRC-32C does not match its contents";
                return null;
            }
            CheckpointManifest manifest = body.Deserialize<CheckpointManifest>(s_options)
                ?? throw new JsonException("empty manifest");
            if (manifest.Magic != ExpectedMagic)
                problem = $"its magic is '{manifest.Magic}', not '{ExpectedMagic}'";
            else if (manifest.Version is < 1 or > CurrentVersion)
                problem = $"it is format version {manifest.Version}, and this FineTune reads versions 1 to {CurrentVersion} (use the FineTune release that wrote it)";
            return problem is null ? manifest : null;
        }
        catch (UserErrorException e)
        {
            problem = $"it is not a valid manifest ({e.Message.TrimEnd('.')})";
            return null;
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException or ArgumentException)
        {
            problem = $"it is not a valid manifest ({e.Message.TrimEnd('.')})";
            return null;
        }
    }
}
