namespace FineTune.IO.Safetensors;

/// <summary>
/// One tensor entry of a validated safetensors header. Data offsets are relative to the byte buffer that follows the
/// header (end exclusive); <see cref="FileOffset"/> is absolute. Data is row-major, little-endian.
/// </summary>
public sealed class SafetensorsTensorInfo
{
    public SafetensorsTensorInfo(string name, SafetensorsDType dtype, IReadOnlyList<long> shape, long dataBegin, long dataEnd, long dataStartFileOffset)
    {
        Name = name;
        DType = dtype;
        Shape = shape;
        DataBegin = dataBegin;
        DataEnd = dataEnd;
        FileOffset = dataStartFileOffset + dataBegin;
    }

    public string Name { get; }

    public SafetensorsDType DType { get; }

    /// <summary>Dimensions, outermost first; empty for a scalar.</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Start of the tensor's bytes, relative to the data buffer.</summary>
    public long DataBegin { get; }

    /// <summary>End (exclusive) of the tensor's bytes, relative to the data buffer.</summary>
    public long DataEnd { get; }

    /// <summary>Absolute offset of the first byte in the file (8 + header length + <see cref="DataBegin"/>).</summary>
    public long FileOffset { get; }

    public long ByteCount => DataEnd - DataBegin;

    public long ElementCount => ByteCount / DType.ElementByteCount();

    public override string ToString() => $"{Name} {DType} [{string.Join(", ", Shape)}] @ [{DataBegin}, {DataEnd})";
}
