using System.Runtime.InteropServices;
using FineTune.IO;
using FineTune.Offload.Memory;

namespace FineTune.Offload.Optimizer;

/// <summary>One saved extent: elements [First, First + Count) of the flat space, in file <paramref name="File"/> of the load.</summary>
internal sealed record SavedExtent(long First, long Count, OptimizerStateFile.ExtentEntry Entry, int File);

/// <summary>
/// Fills sub-groups, in ascending order, from saved extents (ascending, covering the flat space, spread over one file
/// or one per rank): a sub-group that is exactly one saved extent is read straight into its buffer; otherwise its
/// pieces are copied out of a scratch copy of each covering extent, which stays until a later sub-group has used all
/// of it. Extents of sub-groups the optimizer does not hold (another rank's) are skipped unread; each extent read is
/// read once and its CRC verified. <see cref="OptimizerStateFile"/> uses it for every load.
/// </summary>
internal sealed unsafe class SavedExtentReader(IReadOnlyList<(FileStream Data, string Path)> files, IReadOnlyList<SavedExtent> saved, StateEncoding encoding) : IDisposable
{
    private const int CrcChunkByteCount = 1 << 30;
    private int _next;          // first saved extent not yet read or skipped
    private int _inScratch = -1;
    private byte* _scratch;
    private long _scratchByteCount;

    public void Fill(SubGroup group, HostLease states)
    {
        // extents wholly below this sub-group belong to sub-groups this optimizer does not hold
        while (_next < saved.Count && saved[_next].First + saved[_next].Count <= group.FirstElement)
            _next++;
        if (_next < saved.Count && saved[_next].First == group.FirstElement && saved[_next].Count == group.ElementCount)
        {
            Read(_next, states.Pointer); // the same layout: straight into the buffer (a buffer holds 12 bytes per element, whatever the encoding)
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
            SavedExtent e = saved[extent];
            long take = Math.Min(end, e.First + e.Count) - at;
            CopyPlanes(encoding, _scratch, e.Count, at - e.First, (byte*)states.Pointer, group.ElementCount, at - group.FirstElement, take);
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

    /// <summary>A piece of every plane: elements [from, from + count) of an extent of n elements into [to, ...) of one of m elements.</summary>
    private static void CopyPlanes(StateEncoding encoding, byte* source, long n, long from, byte* target, long m, long to, long count)
    {
        long sourcePlane = 0, targetPlane = 0;
        foreach (int bytes in encoding.PlaneBytes())
        {
            Buffer.MemoryCopy(source + sourcePlane + bytes * from, target + targetPlane + bytes * to, bytes * count, bytes * count);
            sourcePlane += bytes * n;
            targetPlane += bytes * m;
        }
    }

    private void Read(int extent, byte* target)
    {
        OptimizerStateFile.ExtentEntry entry = saved[extent].Entry;
        var (data, dataPath) = files[saved[extent].File];
        if (entry.FileOffset + entry.ByteCount > data.Length)
            throw new DamagedStatesException($"is truncated: extent {entry.SubGroup} (bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount}) lies past its end",
                $"Optimizer state extent {entry.SubGroup} (bytes {entry.FileOffset}..{entry.FileOffset + entry.ByteCount} of {dataPath}) lies past the end of the file; the checkpoint is truncated.", dataPath);
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
                $"(stored {entry.Crc32C:x8}, read {crc:x8}); the checkpoint is corrupt, resume from an earlier one.", dataPath);
    }
}
