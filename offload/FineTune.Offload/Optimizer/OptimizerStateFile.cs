using System.Runtime.InteropServices;
using System.Text.Json;
using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Saves and loads a <see cref="PartitionedOptimizer"/>'s state for checkpoints, bit-exactly and independent of the
/// sub-group layout. optimizer-state.bin holds extents back to back, each the fp32 [master | m | v] of one
/// contiguous range of the flat parameter space (the saving optimizer's sub-groups, 12 bytes per element);
/// optimizer-state.json holds the format name and version, the step, the parameter table (names, element counts and
/// first elements in the flat space) and each extent's element range, file offset, length and CRC32C.
/// Load checks the parameter table against the optimizer's parameters (a different model is refused, naming the
/// parameter), then fills each of its own sub-groups from the extents that cover its range: with the same layout one
/// whole extent per sub-group, otherwise by merging the two ascending partitions through one saved extent at a time, so
/// a resume may change sub_group_element_count (and, later, the number of ranks). Every extent is read once, whole,
/// and its CRC32C verified; a mismatch names the extent. After a failed load the optimizer is unusable (some
/// sub-groups may already hold the new states): build a new one. Version 1 files (sub-group-indexed extents) load too.
/// </summary>
public static class OptimizerStateFile
{
    public const string DataFileName = "optimizer-state.bin";
    public const string ManifestFileName = "optimizer-state.json";
    private const string FormatName = "finetune-optimizer-state";
    private const int FormatVersion = 2;
    private const int CrcChunkByteCount = 1 << 30;

    private sealed record ExtentEntry(int SubGroup, long FileOffset, long ByteCount, uint Crc32C)
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
        IReadOnlyList<ParameterEntry> Parameters, IReadOnlyList<ExtentEntry> Extents);

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
        var manifest = new Manifest(FormatName, FormatVersion, optimizer.StepNumber, optimizer.SubGroupElementCount, parameters, extents);
        File.WriteAllText(Path.Combine(directory, ManifestFileName), JsonSerializer.Serialize(manifest, s_json));
        return saved;
    }

    /// <summary>Loads the states saved in <paramref name="directory"/>, verifying each extent's CRC as it is read (one read of the file); <paramref name="progress"/> gets the bytes read so far.</summary>
    public static void Load(PartitionedOptimizer optimizer, string directory, Action<long>? progress = null)
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
        IReadOnlyList<(long First, long Count, ExtentEntry Entry)> saved = CheckLayout(optimizer, manifest, manifestPath);
        using FileStream data = OpenShared(dataPath);
        using var reader = new ExtentReader(data, dataPath, saved);
        long read = 0;
        optimizer.FillStates((group, states) =>
        {
            reader.Fill(group, states);
            read += group.StateByteCount;
            progress?.Invoke(read);
            optimizer.WriteWeightsFromMaster(group, states);
        });
        optimizer.Options.WeightWriteBack?.Flush();
        optimizer.StepNumber = manifest.Step;
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

    /// <summary>Checks format and parameter table; returns the saved extents' element ranges, ascending and contiguous.</summary>
    private static IReadOnlyList<(long First, long Count, ExtentEntry Entry)> CheckLayout(PartitionedOptimizer optimizer, Manifest manifest, string manifestPath)
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
            if (first != expected || count <= 0 || extent.ByteCount != 12 * count)
                throw new UserErrorException($"{manifestPath} extent {extent.SubGroup} covers elements [{first}, {first + count}) in {extent.ByteCount} bytes where [{expected}, ...) was expected; the checkpoint is damaged.");
            ranges.Add((first, count, extent));
            expected = first + count;
        }
        if (expected != total)
            throw new UserErrorException($"{manifestPath} lists extents for {expected} elements but the model has {total}; the checkpoint is damaged.");
        return ranges;
    }

    /// <summary>
    /// Fills sub-groups, in ascending order, from the saved extents: a sub-group that is exactly one saved extent is
    /// read straight into its buffer; otherwise its pieces are copied out of a scratch copy of each covering extent,
    /// which stays until a later sub-group has used all of it. Each extent is read once and its CRC verified.
    /// </summary>
    private sealed unsafe class ExtentReader(FileStream data, string dataPath, IReadOnlyList<(long First, long Count, ExtentEntry Entry)> saved) : IDisposable
    {
        private int _next;          // first saved extent not yet read
        private int _inScratch = -1;
        private byte* _scratch;
        private long _scratchByteCount;

        public void Fill(SubGroup group, HostLease states)
        {
            if (_next < saved.Count && saved[_next].First == group.FirstElement && saved[_next].Count == group.ElementCount)
            {
                Read(_next, states.Pointer); // the same layout: straight into the buffer
                _next++;
                _inScratch = -1;
                return;
            }
            long end = group.FirstElement + group.ElementCount;
            for (long at = group.FirstElement; at < end;)
            {
                int extent = ExtentOf(at);
                if (_inScratch != extent)
                    LoadScratch(extent);
                var (first, count, _) = saved[extent];
                long take = Math.Min(end, first + count) - at;
                CopyPlanes(_scratch, count, at - first, (byte*)states.Pointer, group.ElementCount, at - group.FirstElement, take);
                at += take;
            }
        }

        public void Dispose()
        {
            if (_scratch is not null)
                NativeMemory.Free(_scratch);
            _scratch = null;
        }

        private int ExtentOf(long element)
        {
            int e = _inScratch >= 0 ? _inScratch : _next;
            while (saved[e].First + saved[e].Count <= element)
                e++;
            return e;
        }

        private void LoadScratch(int extent)
        {
            long bytes = saved[extent].Entry.ByteCount;
            if (bytes > _scratchByteCount)
            {
                if (_scratch is not null)
                    NativeMemory.Free(_scratch);
                _scratch = (byte*)NativeMemory.Alloc((nuint)bytes);
                _scratchByteCount = bytes;
            }
            Read(extent, _scratch);
            _inScratch = extent;
            _next = Math.Max(_next, extent + 1);
        }

        /// <summary>[master | m | v] piece: elements [from, from + count) of an extent of n elements into [to, ...) of one of m elements.</summary>
        private static void CopyPlanes(byte* source, long n, long from, byte* target, long m, long to, long count)
        {
            for (int plane = 0; plane < 3; plane++)
                Buffer.MemoryCopy(source + 4 * (plane * n + from), target + 4 * (plane * m + to), 4 * count, 4 * count);
        }

        private void Read(int extent, byte* target)
        {
            ExtentEntry entry = saved[extent].Entry;
            if (entry.FileOffset + entry.ByteCount > data.Length)
                throw new DamagedStatesException($"is truncated: extent {entry.SubGroup} (bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount}) lies past its end",
                    $"Optimizer state extent {entry.SubGroup} (bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount} of {dataPath}) lies past the end of the file; the checkpoint is truncated.");
            data.Position = entry.FileOffset;
            uint crc = 0;
            for (long done = 0; done < entry.ByteCount; done += CrcChunkByteCount)
            {
                var chunk = new Span<byte>(target + done, (int)Math.Min(CrcChunkByteCount, entry.ByteCount - done));
                data.ReadExactly(chunk);
                crc = Crc32C.Append(crc, chunk);
            }
            if (crc != entry.Crc32C)
                throw new DamagedStatesException($"fails its CRC-32C check in extent {entry.SubGroup} (bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount})",
                    $"Optimizer state extent {entry.SubGroup} (sub-group {entry.SubGroup}, bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount} of {dataPath}) fails its CRC32C check " +
                    $"(stored {entry.Crc32C:x8}, read {crc:x8}); the checkpoint is corrupt, resume from an earlier one.");
        }
    }
}
