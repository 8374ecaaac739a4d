using FineTune.IO;
using FineTune.IO.Safetensors;

namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// The CRC-32C of each file of a base folder, assembled from the CRCs of the byte ranges read out of it in whatever
/// order they were read (tensor by tensor in the model's order): at the end each file's header, any bytes no
/// tensor covered, and the recorded ranges are put in file order and combined (<see cref="Crc32C.Combine"/>), which
/// gives exactly the CRC of the whole file. Small files that are part of the base (config.json, the shard index)
/// are read whole.
/// </summary>
internal sealed class FileHashes(string folder)
{
    private readonly Dictionary<SafetensorsFile, List<(long Offset, long ByteCount, uint Crc)>> _ranges = [];

    /// <summary>Records that bytes [offset, offset + byteCount) of <paramref name="file"/> have CRC-32C <paramref name="crc"/>.</summary>
    public void Add(SafetensorsFile file, long offset, long byteCount, uint crc)
    {
        if (!_ranges.TryGetValue(file, out var ranges))
            _ranges[file] = ranges = [];
        ranges.Add((offset, byteCount, crc));
    }

    /// <summary>Every file of the base with its size and CRC-32C, by name.</summary>
    public IReadOnlyList<BaseFileHash> Finish(IReadOnlyList<SafetensorsFile> files)
    {
        var hashes = new List<BaseFileHash>();
        foreach (string small in new[] { "config.json", SafetensorsIndex.FileName })
        {
            string path = Path.Combine(folder, small);
            if (File.Exists(path))
            {
                byte[] bytes = InputFile.ReadAllBytes(path, InputFile.ConfigLimitByteCount, small);
                hashes.Add(new BaseFileHash(small, bytes.Length, Crc32C.Compute(bytes)));
            }
        }
        foreach (SafetensorsFile file in files)
            hashes.Add(new BaseFileHash(Path.GetFileName(file.Path), file.FileByteCount, Combined(file)));
        return hashes.OrderBy(h => h.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The whole file's CRC: the recorded ranges in file order, the bytes between them (the header, unused tensors) read now.</summary>
    private uint Combined(SafetensorsFile file)
    {
        List<(long Offset, long ByteCount, uint Crc)> ranges = _ranges.TryGetValue(file, out var recorded) ? recorded : [];
        uint crc = 0;
        long position = 0;
        foreach (var (offset, byteCount, rangeCrc) in ranges.OrderBy(r => r.Offset))
        {
            if (offset < position)
                throw new InvalidOperationException($"{file.Path}: tensor bytes at {offset} overlap bytes already hashed up to {position}.");
            crc = Append(crc, file, position, offset - position);
            crc = Crc32C.Combine(crc, rangeCrc, byteCount);
            position = offset + byteCount;
        }
        return Append(crc, file, position, file.FileByteCount - position);
    }

    /// <summary>Continues <paramref name="crc"/> over bytes [offset, offset + byteCount) read from the file now.</summary>
    private static uint Append(uint crc, SafetensorsFile file, long offset, long byteCount)
    {
        if (byteCount == 0)
            return crc;
        using var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        stream.Position = offset;
        byte[] chunk = new byte[(int)Math.Min(byteCount, 1 << 20)];
        for (long done = 0; done < byteCount;)
        {
            int read = stream.Read(chunk, 0, (int)Math.Min(chunk.Length, byteCount - done));
            if (read == 0)
                throw new UserErrorException($"{file.Path} ended at byte {offset + done} while it was being read; was it replaced during the run?");
            crc = Crc32C.Append(crc, chunk.AsSpan(0, read));
            done += read;
        }
        return crc;
    }
}
