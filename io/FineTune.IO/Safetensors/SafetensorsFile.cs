using System.Buffers.Binary;
using Microsoft.Win32.SafeHandles;

namespace FineTune.IO.Safetensors;

/// <summary>
/// A safetensors file opened for reading: the header is read and fully validated at <see cref="Open"/>, tensor
/// bytes are read on demand with positional reads (buffered; for O_DIRECT streaming use <see cref="SafetensorsTensorInfo.FileOffset"/>
/// with a <see cref="DirectFile"/>). Layout: u64 LE N | N bytes UTF-8 JSON header | data buffer.
/// reference: /work/shared/FORMATS.md §2.1; huggingface/safetensors README.md.
/// Not thread-affine: reads are positional, so concurrent ReadTensorBytes calls are safe.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName;

    private SafetensorsFile(string path, SafeFileHandle handle, long fileByteCount, long headerByteCount,
        IReadOnlyList<SafetensorsTensorInfo> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        Path = path;
        _handle = handle;
        FileByteCount = fileByteCount;
        HeaderByteCount = headerByteCount;
        Tensors = tensors;
        Metadata = metadata;
        _byName = tensors.ToDictionary(tensor => tensor.Name, StringComparer.Ordinal);
    }

    public string Path { get; }

    public long FileByteCount { get; }

    /// <summary>N: the JSON header's length in bytes, padding included.</summary>
    public long HeaderByteCount { get; }

    /// <summary>8 + N: where the data buffer starts.</summary>
    public long DataStartFileOffset => 8 + HeaderByteCount;

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    /// <summary>The `__metadata__` entries (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Opens and validates <paramref name="path"/>; any format violation is a <see cref="SafetensorsFormatException"/>.</summary>
    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path))
            throw new UserErrorException($"Safetensors file {path} does not exist; check the model path.");
        SafeFileHandle handle;
        try
        {
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        catch (Exception exception) when (exception is IOException or UnauthorizedAccessException)
        {
            throw new UserErrorException($"Cannot open safetensors file {path}: {exception.Message}", exception);
        }
        try
        {
            long fileByteCount = RandomAccess.GetLength(handle);
            if (fileByteCount < 8)
                throw new SafetensorsFormatException(path, $"the file has {fileByteCount} bytes, fewer than the 8-byte header length");
            Span<byte> lengthBytes = stackalloc byte[8];
            ReadExactly(handle, path, lengthBytes, 0);
            ulong headerByteCount = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
            if (headerByteCount > SafetensorsHeaderParser.MaxHeaderByteCount)
                throw new SafetensorsFormatException(path, $"the header length {headerByteCount} exceeds the 100,000,000-byte limit");
            if ((long)headerByteCount + 8 > fileByteCount)
                throw new SafetensorsFormatException(path, $"the header length {headerByteCount} runs past the end of the {fileByteCount}-byte file");

            // Bounded by the checks above: never more than the file's own size.
            byte[] header = new byte[headerByteCount];
            ReadExactly(handle, path, header, 8);
            var (tensors, metadata) = SafetensorsHeaderParser.Parse(path, header, fileByteCount);
            return new SafetensorsFile(path, handle, fileByteCount, (long)headerByteCount, tensors, metadata);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public bool TryGetTensor(string name, out SafetensorsTensorInfo tensor) => _byName.TryGetValue(name, out tensor!);

    public SafetensorsTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out SafetensorsTensorInfo? tensor)
            ? tensor
            : throw new UserErrorException($"{Path} has no tensor named '{name}'.");

    /// <summary>Reads the whole tensor into <paramref name="destination"/>, whose length must equal its byte count.</summary>
    public void ReadTensorBytes(string name, Span<byte> destination)
    {
        SafetensorsTensorInfo tensor = GetTensor(name);
        if (destination.Length != tensor.ByteCount)
            throw new ArgumentException($"Tensor '{name}' holds {tensor.ByteCount} bytes; the destination has {destination.Length}.", nameof(destination));
        ReadExactly(_handle, Path, destination, tensor.FileOffset);
    }

    /// <summary>Reads destination.Length bytes of the tensor starting <paramref name="tensorByteOffset"/> into it (for tensors over 2 GiB).</summary>
    public void ReadTensorBytes(string name, long tensorByteOffset, Span<byte> destination)
    {
        SafetensorsTensorInfo tensor = GetTensor(name);
        if (tensorByteOffset < 0 || tensorByteOffset + destination.Length > tensor.ByteCount)
            throw new ArgumentOutOfRangeException(nameof(tensorByteOffset), $"Range [{tensorByteOffset}, {tensorByteOffset + destination.Length}) is outside tensor '{name}' ({tensor.ByteCount} bytes).");
        ReadExactly(_handle, Path, destination, tensor.FileOffset + tensorByteOffset);
    }

    public void Dispose() => _handle.Dispose();

    private static void ReadExactly(SafeFileHandle handle, string path, Span<byte> destination, long fileOffset)
    {
        while (destination.Length > 0)
        {
            int read = RandomAccess.Read(handle, destination, fileOffset);
            if (read == 0)
                throw new SafetensorsFormatException(path, $"the file ended at offset {fileOffset} (was it truncated while open?)");
            destination = destination[read..];
            fileOffset += read;
        }
    }
}
