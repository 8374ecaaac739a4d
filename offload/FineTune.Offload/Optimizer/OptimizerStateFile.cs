using System.Text.Json;
using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Saves and loads a <see cref="PartitionedOptimizer"/>'s state for checkpoints, bit-exactly: optimizer-state.bin
/// holds every sub-group's extent ([master | m | v] fp32, 12 bytes per element) back to back; optimizer-state.json
/// holds the format name and version, the step, the layout (parameter names and element counts, sub-group size)
/// and each extent's offset, length and CRC32C. Load refuses a different layout with a sentence naming the field,
/// and names the first extent whose CRC32C does not match. After a failed load the optimizer is unusable
/// (some sub-groups may already hold the new states): build a new one.
/// </summary>
public static class OptimizerStateFile
{
    public const string DataFileName = "optimizer-state.bin";
    public const string ManifestFileName = "optimizer-state.json";
    private const string FormatName = "finetune-optimizer-state";
    private const int FormatVersion = 1;
    private const int CrcChunkByteCount = 1 << 30;

    private sealed record ExtentEntry(int SubGroup, long FileOffset, long ByteCount, uint Crc32C);

    private sealed record ParameterEntry(string Name, long ElementCount);

    private sealed record Manifest(string Format, int Version, long Step, long SubGroupElementCount,
        IReadOnlyList<ParameterEntry> Parameters, IReadOnlyList<ExtentEntry> Extents);

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static unsafe void Save(PartitionedOptimizer optimizer, string directory)
    {
        Directory.CreateDirectory(directory);
        var extents = new List<ExtentEntry>();
        string dataPath = Path.Combine(directory, DataFileName);
        using (var data = new FileStream(dataPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            optimizer.VisitStates((group, states) =>
            {
                long offset = data.Position;
                uint crc = 0;
                for (long done = 0; done < group.StateByteCount; done += CrcChunkByteCount)
                {
                    var chunk = new ReadOnlySpan<byte>(states.Pointer + done, (int)Math.Min(CrcChunkByteCount, group.StateByteCount - done));
                    crc = Crc32C.Append(crc, chunk);
                    data.Write(chunk);
                }
                extents.Add(new ExtentEntry(group.Index, offset, group.StateByteCount, crc));
            });
            data.Flush(flushToDisk: true);
        }
        var manifest = new Manifest(FormatName, FormatVersion, optimizer.StepNumber, optimizer.SubGroupElementCount,
            optimizer.Parameters.Select(p => new ParameterEntry(p.Name, p.ElementCount)).ToList(), extents);
        File.WriteAllText(Path.Combine(directory, ManifestFileName), JsonSerializer.Serialize(manifest, s_json));
    }

    public static unsafe void Load(PartitionedOptimizer optimizer, string directory)
    {
        string manifestPath = Path.Combine(directory, ManifestFileName);
        string dataPath = Path.Combine(directory, DataFileName);
        if (!File.Exists(manifestPath) || !File.Exists(dataPath))
            throw new UserErrorException($"The checkpoint directory {directory} lacks {ManifestFileName} or {DataFileName}; point the resume at a complete checkpoint.");
        Manifest manifest;
        try
        {
            manifest = JsonSerializer.Deserialize<Manifest>(File.ReadAllText(manifestPath), s_json)
                ?? throw new JsonException("empty manifest");
        }
        catch (JsonException exception)
        {
            throw new UserErrorException($"{manifestPath} is not a valid optimizer state manifest ({exception.Message}); the checkpoint is damaged.", exception);
        }
        CheckLayout(optimizer, manifest, manifestPath);
        using var data = new FileStream(dataPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        optimizer.FillStates((group, states) =>
        {
            ExtentEntry extent = manifest.Extents[group.Index];
            if (extent.FileOffset + extent.ByteCount > data.Length)
                throw new UserErrorException($"Optimizer state extent {group.Index} (bytes {extent.FileOffset}..{extent.FileOffset + extent.ByteCount} of {dataPath}) lies past the end of the file; the checkpoint is truncated.");
            data.Position = extent.FileOffset;
            uint crc = 0;
            for (long done = 0; done < extent.ByteCount; done += CrcChunkByteCount)
            {
                var chunk = new Span<byte>(states.Pointer + done, (int)Math.Min(CrcChunkByteCount, extent.ByteCount - done));
                data.ReadExactly(chunk);
                crc = Crc32C.Append(crc, chunk);
            }
            if (crc != extent.Crc32C)
                throw new UserErrorException(
                    $"Optimizer state extent {group.Index} (sub-group {group.Index}, bytes {extent.FileOffset}..{extent.FileOffset + extent.ByteCount} of {dataPath}) fails its CRC32C check " +
                    $"(stored {extent.Crc32C:x8}, read {crc:x8}); the checkpoint is corrupt, resume from an earlier one.");
            optimizer.WriteWeightsFromMaster(group, states);
        });
        optimizer.Options.WeightWriteBack?.Flush();
        optimizer.StepNumber = manifest.Step;
    }

    private static void CheckLayout(PartitionedOptimizer optimizer, Manifest manifest, string manifestPath)
    {
        if (manifest.Format != FormatName || manifest.Version != FormatVersion)
            throw new UserErrorException($"{manifestPath} has format '{manifest.Format}' version {manifest.Version}; this FineTune reads '{FormatName}' version {FormatVersion}.");
        if (manifest.SubGroupElementCount != optimizer.SubGroupElementCount)
            throw new UserErrorException($"{manifestPath} was saved with sub_group_element_count {manifest.SubGroupElementCount} but the optimizer uses {optimizer.SubGroupElementCount}; set the same sub-group size to resume.");
        if (manifest.Parameters.Count != optimizer.Parameters.Count)
            throw new UserErrorException($"{manifestPath} holds {manifest.Parameters.Count} parameters but the model has {optimizer.Parameters.Count}; resume with the same model.");
        for (int i = 0; i < manifest.Parameters.Count; i++)
        {
            ParameterEntry saved = manifest.Parameters[i];
            HostParameter current = optimizer.Parameters[i];
            if (saved.Name != current.Name || saved.ElementCount != current.ElementCount)
                throw new UserErrorException($"{manifestPath} parameter {i} is '{saved.Name}' ({saved.ElementCount} elements) but the model's is '{current.Name}' ({current.ElementCount}); resume with the same model.");
        }
        if (manifest.Extents.Count != optimizer.SubGroups.Count)
            throw new UserErrorException($"{manifestPath} lists {manifest.Extents.Count} extents for {optimizer.SubGroups.Count} sub-groups; the checkpoint is damaged.");
    }
}
