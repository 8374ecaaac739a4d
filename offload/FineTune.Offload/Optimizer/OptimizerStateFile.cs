using System.Text.Json;
using FineTune.IO;
using FineTune.Offload.Adam;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Saves and loads a <see cref="PartitionedOptimizer"/>'s state for checkpoints, bit-exactly and independent of the
/// sub-group layout. optimizer-state.bin holds extents back to back, each the states of one contiguous range of the
/// flat parameter space (the saving optimizer's sub-groups) as its <see cref="StateEncoding"/> lays them out: fp32
/// [master | m | v], 12 bytes per element, or [m | v | residual], 10 (the masters' other half is the bf16 weights,
/// which a checkpoint holds beside the states and a resume loads with the model);
/// optimizer-state.json holds the format name and version, the encoding (version 3), the step, the parameter table
/// (names, element counts and first elements in the flat space) and each extent's element range, file offset, length
/// and CRC32C.
/// Load checks the parameter table against the optimizer's parameters (a different model is refused, naming the
/// parameter), then fills each of its own sub-groups from the extents that cover its range: with the same layout one
/// whole extent per sub-group, otherwise by merging the two ascending partitions through one saved extent at a time, so
/// a resume may change sub_group_element_count, and the number of data-parallel ranks (each rank saves its share
/// into rank-R/, and a load takes what it holds from all of them). Every extent is read once, whole,
/// and its CRC32C verified; a mismatch names the extent. After a failed load the optimizer is unusable (some
/// sub-groups may already hold the new states): build a new one. Version 1 files (sub-group-indexed extents) load too.
/// Whole fp32 masters load into residual masters (the weights are rewritten from them, then the residuals taken);
/// residual masters into whole ones are refused with what to change.
/// </summary>
public static class OptimizerStateFile
{
    public const string DataFileName = "optimizer-state.bin";
    public const string ManifestFileName = "optimizer-state.json";

    /// <summary>About 2 million extents of ~130 bytes each: far above a real run's (one per sub-group), below what would exhaust memory.</summary>
    private const long ManifestLimitByteCount = 256L << 20;
    private const string FormatName = "finetune-optimizer-state";
    private const int FormatVersion = 3;
    private const int CrcChunkByteCount = 1 << 30;

    private const string RankFolderPrefix = "rank-";

    internal sealed record ExtentEntry(int SubGroup, long FileOffset, long ByteCount, uint Crc32C)
    {
        /// <summary>First element of the flat space the extent holds (version 2; version 1 derives it from the sub-group size).</summary>
        public long? FirstElement { get; init; }

        public long? ElementCount { get; init; }
    }

    private sealed record ParameterEntry(string Name, long ElementCount)
    {
        public long? FirstElement { get; init; }
    }

    private sealed record Manifest(string Format, int Version, long Step, long SubGroupElementCount,
        IReadOnlyList<ParameterEntry> Parameters, IReadOnlyList<ExtentEntry> Extents)
    {
        /// <summary>How each extent lays out its states (version 3; earlier versions hold whole fp32 masters).</summary>
        public string? StateEncoding { get; init; }
    }

    private static readonly JsonSerializerOptions s_json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    /// <summary>
    /// Saves the states into <paramref name="directory"/>: a hard link to the NVMe swap file where the filesystem
    /// allows it (no copy: the extents' offsets in the swap file are the manifest's, and the swap writes its next
    /// changes to fresh extents), otherwise a copy. The CRCs come from the writes that made the states (kept when
    /// <see cref="PartitionedOptimizer.RecordStateChecksums"/> was on), or from one read of the sub-groups that lack
    /// them. <paramref name="progress"/> gets the bytes read or copied so far.
    /// </summary>
    public static unsafe SavedStates Save(PartitionedOptimizer optimizer, string directory, Action<long>? progress = null)
    {
        Directory.CreateDirectory(directory);
        string dataPath = Path.Combine(directory, DataFileName);
        var extents = new List<ExtentEntry>();
        SavedStates saved;
        string? whyCopied = "the states are in host memory";
        if (optimizer.NvmeStates is { } swap && swap.TryLinkInto(dataPath, out whyCopied))
        {
            var crcs = new Dictionary<int, uint>();
            var missing = new List<SubGroup>();
            foreach (SubGroup group in optimizer.SubGroups)
                if (optimizer.TryGetStateChecksum(group, out uint crc))
                    crcs[group.Index] = crc;
                else
                    missing.Add(group);
            long read = 0;
            optimizer.VisitStates(missing, (group, states) =>
            {
                crcs[group.Index] = SwapPipeline.ExtentCrc(states, group);
                read += group.StateByteCount;
                progress?.Invoke(read);
            });
            foreach (SubGroup group in optimizer.SubGroups)
                extents.Add(new ExtentEntry(group.Index, swap.ExtentOffset(group.Index), group.StateByteCount, crcs[group.Index]) { FirstElement = group.FirstElement, ElementCount = group.ElementCount });
            saved = new SavedStates(true, optimizer.StateByteCount, 0, read, null);
        }
        else
        {
            if (File.Exists(dataPath))
                File.Delete(dataPath); // a failed link leaves nothing; this is a retry's own earlier copy
            long written = 0;
            using (var data = new FileStream(dataPath, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                optimizer.VisitStates(optimizer.SubGroups, (group, states) =>
                {
                    long offset = data.Position;
                    uint crc = 0;
                    for (long done = 0; done < group.StateByteCount; done += CrcChunkByteCount)
                    {
                        var chunk = new ReadOnlySpan<byte>(states.Pointer + done, (int)Math.Min(CrcChunkByteCount, group.StateByteCount - done));
                        crc = Crc32C.Append(crc, chunk);
                        data.Write(chunk);
                    }
                    extents.Add(new ExtentEntry(group.Index, offset, group.StateByteCount, crc) { FirstElement = group.FirstElement, ElementCount = group.ElementCount });
                    written += group.StateByteCount;
                    progress?.Invoke(written);
                });
                data.Flush(flushToDisk: true);
            }
            saved = new SavedStates(false, optimizer.StateByteCount, written, 0, whyCopied);
        }
        long first = 0;
        var parameters = new List<ParameterEntry>();
        foreach (HostParameter p in optimizer.Parameters)
        {
            parameters.Add(new ParameterEntry(p.Name, p.ElementCount) { FirstElement = first });
            first += p.ElementCount;
        }
        var manifest = new Manifest(FormatName, FormatVersion, optimizer.StepNumber, optimizer.SubGroupElementCount, parameters, extents)
        {
            StateEncoding = optimizer.Options.MasterEncoding.ManifestName(),
        };
        File.WriteAllText(Path.Combine(directory, ManifestFileName), JsonSerializer.Serialize(manifest, s_json));
        return saved;
    }

    /// <summary>
    /// Loads the states saved in <paramref name="directory"/> — one optimizer's files, or the rank-R folders of a
    /// data-parallel checkpoint — verifying each extent's CRC as it is read (once); <paramref name="progress"/> gets the
    /// bytes read so far. The optimizer may hold all sub-groups or a rank's share of them: it reads only what it holds,
    /// so a resume may change the number of ranks too.
    /// </summary>
    public static void Load(PartitionedOptimizer optimizer, string directory, Action<long>? progress = null)
    {
        IReadOnlyList<string> parts = PartsOf(directory);
        var saved = new List<SavedExtent>();
        long? step = null;
        StateEncoding? encoding = null;
        for (int part = 0; part < parts.Count; part++)
        {
            string manifestPath = Path.Combine(parts[part], ManifestFileName);
            Manifest manifest = ReadManifest(manifestPath);
            if (step is long earlier && earlier != manifest.Step)
                throw new UserErrorException($"{manifestPath} is of optimizer step {manifest.Step} but {parts[0]} of step {earlier}; the ranks' parts come from different checkpoints, so the checkpoint is damaged.");
            step = manifest.Step;
            StateEncoding partEncoding = EncodingOf(manifest, manifestPath, optimizer);
            if (encoding is StateEncoding first && first != partEncoding)
                throw new UserErrorException($"{manifestPath} stores its states as {partEncoding.ManifestName()} but {parts[0]} as {first.ManifestName()}; the ranks' parts come from different checkpoints, so the checkpoint is damaged.");
            encoding = partEncoding;
            saved.AddRange(CheckLayout(optimizer, manifest, manifestPath, whole: parts.Count == 1, partEncoding).Select(r => new SavedExtent(r.First, r.Count, r.Entry, part)));
        }
        saved.Sort((a, b) => a.First.CompareTo(b.First));
        CheckCoverage(directory, saved, optimizer.Parameters.Sum(p => p.ElementCount));
        var files = new List<(FileStream Data, string Path)>();
        try
        {
            foreach (string part in parts)
            {
                string dataPath = Path.Combine(part, DataFileName);
                files.Add((OpenShared(dataPath), dataPath));
            }
            using var reader = new SavedExtentReader(files, saved, encoding!.Value);
            long read = 0;
            optimizer.FillStates((group, states) =>
            {
                reader.Fill(group, states);
                read += group.StateByteCount;
                progress?.Invoke(read);
                // residual masters saved: the weights are the other half, which the caller loaded with the model
                if (encoding == StateEncoding.Bf16Residual)
                {
                    if (group.Encoding == StateEncoding.Float32Master)
                        optimizer.MastersFromResiduals(group, states);
                    return;
                }
                optimizer.WriteWeightsFromMaster(group, states);
                SubGroupStates.Representable(optimizer.Parameters, group, states);
                SubGroupStates.Encode(optimizer.Parameters, group, states);
            });
        }
        finally
        {
            foreach (var (data, _) in files)
                data.Dispose();
        }
        optimizer.Options.WeightWriteBack?.Flush();
        optimizer.StepNumber = step!.Value;
    }

    /// <summary>Where data-parallel rank <paramref name="rank"/> saves its share under a checkpoint's optimizer folder.</summary>
    public static string RankFolder(string directory, int rank) => Path.Combine(directory, RankFolderPrefix + rank.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>The saved parts in <paramref name="directory"/>: itself (one optimizer's files), or its rank-R folders in rank order.</summary>
    private static IReadOnlyList<string> PartsOf(string directory)
    {
        if (File.Exists(Path.Combine(directory, ManifestFileName)) || !Directory.Exists(directory))
            return [CheckPart(directory)];
        var ranks = Directory.GetDirectories(directory, RankFolderPrefix + "*")
            .Select(d => (Folder: d, Rank: int.TryParse(Path.GetFileName(d)[RankFolderPrefix.Length..], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int r) ? r : -1))
            .Where(d => d.Rank >= 0).OrderBy(d => d.Rank).ToList();
        if (ranks.Count == 0)
            return [CheckPart(directory)];
        for (int i = 0; i < ranks.Count; i++)
            if (ranks[i].Rank != i)
                throw new UserErrorException($"The checkpoint directory {directory} holds the optimizer states of ranks {string.Join(", ", ranks.Select(r => r.Rank))} but not of rank {i}; the checkpoint is damaged, resume from another one.");
        return ranks.Select(r => CheckPart(r.Folder)).ToList();
    }

    private static string CheckPart(string directory)
    {
        if (!File.Exists(Path.Combine(directory, ManifestFileName)) || !File.Exists(Path.Combine(directory, DataFileName)))
            throw new UserErrorException($"The checkpoint directory {directory} lacks {ManifestFileName} or {DataFileName}; point the resume at a complete checkpoint.");
        return directory;
    }

    private static Manifest ReadManifest(string manifestPath)
    {
        try
        {
            byte[] bytes = InputFile.ReadAllBytes(manifestPath, ManifestLimitByteCount, ManifestFileName);
            using (StrictJson.Parse(bytes, manifestPath, "the checkpoint is damaged; resume from another checkpoint"))
            {
            }
            return JsonSerializer.Deserialize<Manifest>(InputFile.WithoutByteOrderMark(bytes).Span, s_json)
                ?? throw new JsonException("empty manifest");
        }
        catch (JsonException exception)
        {
            throw new UserErrorException($"{manifestPath} is not a valid optimizer state manifest ({exception.Message}); the checkpoint is damaged.", exception);
        }
    }

    private static FileStream OpenShared(string dataPath)
    {
        try
        {
            return new FileStream(dataPath, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        }
        catch (IOException exception) when (File.Exists(dataPath))
        {
            // a linked checkpoint is the live swap file of a run until its next step rewrites every extent; that run holds its lock
            throw new UserErrorException($"{dataPath} is in use by a FineTune run whose NVMe swap file it still is (until that run's next step rewrites the states); resume after that step or once the run ends ({exception.Message.TrimEnd('.')}).", exception);
        }
    }

    /// <summary>
    /// Checks format and parameter table; returns the saved extents' element ranges, ascending: contiguous from 0 to
    /// the end when the file is the <paramref name="whole"/> state, disjoint when it is one rank's share.
    /// </summary>
    private static IReadOnlyList<(long First, long Count, ExtentEntry Entry)> CheckLayout(PartitionedOptimizer optimizer, Manifest manifest, string manifestPath, bool whole, StateEncoding encoding)
    {
        if (manifest.Format != FormatName || manifest.Version is < 1 or > FormatVersion)
            throw new UserErrorException($"{manifestPath} has format '{manifest.Format}' version {manifest.Version}; this FineTune reads '{FormatName}' versions 1 to {FormatVersion}.");
        if (manifest.Parameters.Count != optimizer.Parameters.Count)
            throw new UserErrorException($"{manifestPath} holds {manifest.Parameters.Count} parameters but the model has {optimizer.Parameters.Count}; resume with the same model.");
        long total = 0;
        for (int i = 0; i < manifest.Parameters.Count; i++)
        {
            ParameterEntry entry = manifest.Parameters[i];
            HostParameter current = optimizer.Parameters[i];
            if (entry.Name != current.Name || entry.ElementCount != current.ElementCount || (entry.FirstElement is long f && f != total))
                throw new UserErrorException($"{manifestPath} parameter {i} is '{entry.Name}' ({entry.ElementCount} elements) but the model's is '{current.Name}' ({current.ElementCount}); resume with the same model.");
            total += current.ElementCount;
        }
        var ranges = new List<(long, long, ExtentEntry)>();
        long expected = 0;
        foreach (ExtentEntry extent in manifest.Extents)
        {
            long first = extent.FirstElement ?? (long)extent.SubGroup * manifest.SubGroupElementCount;
            long count = extent.ElementCount ?? Math.Min(manifest.SubGroupElementCount, total - first);
            if ((whole ? first != expected : first < expected) || count <= 0 || first + count > total || extent.ByteCount != encoding.BytesPerElement() * count)
                throw new UserErrorException($"{manifestPath} extent {extent.SubGroup} covers elements [{first}, {first + count}) in {extent.ByteCount} bytes where [{expected}, ...) was expected; the checkpoint is damaged.");
            ranges.Add((first, count, extent));
            expected = first + count;
        }
        if (whole && expected != total)
            throw new UserErrorException($"{manifestPath} lists extents for {expected} elements but the model has {total}; the checkpoint is damaged.");
        return ranges;
    }

    /// <summary>
    /// The saved encoding. Whole fp32 masters load into either encoding (the weights are rewritten from them); residual
    /// masters into either too, completed by the bf16 weights the model was loaded with, except where those are not
    /// the saved ones: fp16 weights (a rounding of them), or a data-parallel rank (its share only).
    /// </summary>
    private static StateEncoding EncodingOf(Manifest manifest, string manifestPath, PartitionedOptimizer optimizer)
    {
        StateEncoding encoding = manifest.StateEncoding switch
        {
            null when manifest.Version < 3 => StateEncoding.Float32Master,
            string name when name == StateEncoding.Float32Master.ManifestName() => StateEncoding.Float32Master,
            string name when name == StateEncoding.Bf16Residual.ManifestName() => StateEncoding.Bf16Residual,
            _ => throw new UserErrorException($"{manifestPath} stores its states as '{manifest.StateEncoding}', which this FineTune does not know; the checkpoint is damaged or from a newer FineTune."),
        };
        if (encoding == StateEncoding.Bf16Residual && optimizer.Options.MasterEncoding != StateEncoding.Bf16Residual
            && (optimizer.Options.PartialPartition || optimizer.Parameters.Any(p => p.WeightType == ElementType.Float16)))
            throw new UserErrorException($"{manifestPath} stores each fp32 master as its bf16 weight plus a 16-bit residual, which needs the checkpoint's bf16 weights to complete it; resume with precision bf16 or fp32, on one rank.");
        return encoding;
    }

    /// <summary>The ranks' extents together must cover the flat space once.</summary>
    private static void CheckCoverage(string directory, IReadOnlyList<SavedExtent> saved, long total)
    {
        long expected = 0;
        foreach (SavedExtent extent in saved)
        {
            if (extent.First != expected)
                throw new UserErrorException($"The optimizer states under {directory} {(extent.First > expected ? "lack" : "hold twice")} elements [{Math.Min(expected, extent.First)}, {Math.Max(expected, extent.First)}) of the flat space; the checkpoint is damaged, resume from another one.");
            expected = extent.First + extent.Count;
        }
        if (expected != total)
            throw new UserErrorException($"The optimizer states under {directory} cover {expected} elements but the model has {total}; the checkpoint is damaged, resume from another one.");
    }
}
