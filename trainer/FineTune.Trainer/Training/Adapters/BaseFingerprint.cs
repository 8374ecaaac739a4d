using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// What a LoRA run's frozen base was, recorded in each checkpoint (base.json) instead of a copy of the base: where it
/// came from (the model folder's full path, or the seed of a generated base) and every file it was read from with
/// its size and CRC-32C, computed while the engine streamed the base into its store (no second read). A resume
/// streams the base again and compares: any difference is one sentence naming the file
/// (<see cref="DifferenceFrom"/>), because adapters trained on other base weights mean nothing on these.
/// </summary>
public sealed record BaseFingerprint
{
    public const string FileName = "base.json";
    public const string ExpectedMagic = "finetune-lora-base";
    public const int CurrentVersion = 1;

    private static readonly JsonSerializerOptions s_options = new() { WriteIndented = true };

    [JsonPropertyName("magic")] public string Magic { get; init; } = ExpectedMagic;
    [JsonPropertyName("version")] public int Version { get; init; } = CurrentVersion;

    /// <summary>The base folder's full path, or a description of a generated base ("random init, seed 7").</summary>
    [JsonPropertyName("source")] public required string Source { get; init; }

    /// <summary>True when <see cref="Source"/> is a folder and <see cref="Files"/> are its files.</summary>
    [JsonPropertyName("is_folder")] public required bool IsFolder { get; init; }

    /// <summary>Every file of the base, by name.</summary>
    [JsonPropertyName("files")] public required IReadOnlyList<BaseFileHash> Files { get; init; }

    /// <summary>
    /// The fingerprint of the files <paramref name="names"/> of <paramref name="folder"/>, each read whole, front to
    /// back (a second read of the base: what export --merge checks before trusting a recorded path); missing files are
    /// left out, for <see cref="DifferenceFrom"/> to name.
    /// </summary>
    public static BaseFingerprint OfFolderFiles(string folder, IEnumerable<string> names)
    {
        var files = new List<BaseFileHash>();
        byte[] chunk = new byte[4 << 20];
        foreach (string name in names)
        {
            string path = Path.Combine(folder, name);
            if (!File.Exists(path))
                continue;
            IO.InputFile.RequireRegular(path, "base file"); // a FIFO would never end
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            uint crc = 0;
            long byteCount = 0;
            for (int read; (read = stream.Read(chunk, 0, chunk.Length)) > 0; byteCount += read)
                crc = IO.Crc32C.Append(crc, chunk.AsSpan(0, read));
            files.Add(new BaseFileHash(name, byteCount, crc));
        }
        return new BaseFingerprint { Source = Path.GetFullPath(folder), IsFolder = true, Files = files };
    }

    public string ToJson() => JsonSerializer.Serialize(this, s_options) + "\n";

    /// <summary>Reads base.json; a damaged or foreign file is a user error naming it.</summary>
    public static BaseFingerprint Read(string path)
    {
        try
        {
            byte[] bytes = IO.InputFile.ReadAllBytes(path, IO.InputFile.ConfigLimitByteCount, FileName);
            using (IO.StrictJson.Parse(bytes, path, "resume from another checkpoint"))
            {
            }
            BaseFingerprint? fingerprint = JsonSerializer.Deserialize<BaseFingerprint>(IO.InputFile.WithoutByteOrderMark(bytes).Span, s_options);
            if (fingerprint is null || fingerprint.Magic != ExpectedMagic || fingerprint.Version != CurrentVersion || fingerprint.Files is null)
                throw new UserErrorException($"{path} is not a FineTune LoRA base record (version {CurrentVersion}); resume from a checkpoint this FineTune wrote.");
            return fingerprint;
        }
        catch (Exception e) when (e is JsonException or IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot read the LoRA base record {path} ({e.Message.TrimEnd('.')}); resume from another checkpoint.", e);
        }
    }

    /// <summary>
    /// Null when this base is the <paramref name="recorded"/> one, else the end of a sentence saying which file
    /// differs and how ("...: PATH has CRC-32C ..., the checkpoint recorded ...; put back ... or start a new run").
    /// Sizes alone (<paramref name="sizesOnly"/>) are the cheap check made before streaming the base.
    /// </summary>
    public string? DifferenceFrom(BaseFingerprint recorded, bool sizesOnly = false)
    {
        string where = recorded.IsFolder ? $"put the base the run started from back at {recorded.Source}" : $"resume with the FineTune and libtorch that generated it ({recorded.Source})";
        var current = Files.ToDictionary(f => f.Name, StringComparer.Ordinal);
        foreach (BaseFileHash file in recorded.Files)
        {
            string path = recorded.IsFolder ? Path.Combine(recorded.Source, file.Name) : $"{file.Name} of the {recorded.Source} base";
            if (!current.TryGetValue(file.Name, out BaseFileHash? now))
                return $"{path} is missing; {where}, or start a new run on this base";
            if (now.ByteCount != file.ByteCount)
                return F($"{path} has {now.ByteCount:N0} bytes, the checkpoint recorded {file.ByteCount:N0}; {where}, or start a new run on this base");
            if (!sizesOnly && now.Crc32C != file.Crc32C)
                return F($"{path} has CRC-32C {now.Crc32C:x8}, the checkpoint recorded {file.Crc32C:x8}; {where}, or start a new run on this base");
        }
        BaseFileHash? extra = Files.FirstOrDefault(f => !recorded.Files.Any(r => r.Name == f.Name));
        return extra is null ? null : $"{extra.Name} is part of the base now but was not when the checkpoint was written; {where}, or start a new run on this base";
    }

    private static string F(FormattableString text) => text.ToString(CultureInfo.InvariantCulture);
}
