using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace FineTune.IO.Safetensors;

/// <summary>
/// Writes a safetensors file in the reference layout, byte for byte what huggingface/safetensors `serialize` writes
/// for the same tensors: tensors sorted by dtype (declaration order, descending) then by name (UTF-8 bytes), offsets
/// contiguous from 0, compact JSON with `__metadata__` first, the header padded with spaces to a multiple of 8.
/// reference: huggingface/safetensors safetensors/src/tensor.rs `prepare`; byte vectors in FORMATS.md §2.1.
/// Tensor bytes come from memory or from a callback streaming them at write time, so a whole model never needs to
/// be in memory at once. The file is written to "path.tmp", fsynced and renamed, so a crash leaves no half file.
/// </summary>
public sealed class SafetensorsWriter
{
    /// <summary>The metadata transformers and torchtune write: {"format": "pt"}.</summary>
    public static readonly IReadOnlyDictionary<string, string> PyTorchMetadata = new Dictionary<string, string> { ["format"] = "pt" };

    private readonly IReadOnlyDictionary<string, string>? _metadata;
    private readonly List<PendingTensor> _tensors = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);

    /// <summary>A writer whose header carries {"format":"pt"} metadata, as Hugging Face checkpoints do.</summary>
    public SafetensorsWriter() : this(PyTorchMetadata) { }

    /// <summary>A writer with the given `__metadata__` (null: no `__metadata__` entry at all).</summary>
    public SafetensorsWriter(IReadOnlyDictionary<string, string>? metadata) => _metadata = metadata;

    /// <summary>Sum of all tensors' byte counts.</summary>
    public long DataByteCount => _tensors.Sum(tensor => tensor.ByteCount);

    public int TensorCount => _tensors.Count;

    /// <summary>Adds a tensor whose bytes (row-major, little-endian) are in memory; they are not copied.</summary>
    public void Add(string name, SafetensorsDType dtype, IReadOnlyList<long> shape, ReadOnlyMemory<byte> data)
    {
        long byteCount = CheckedByteCount(name, dtype, shape);
        if (data.Length != byteCount)
            throw new ArgumentException($"Tensor '{name}' is {dtype} [{string.Join(", ", shape)}] = {byteCount} bytes, but {data.Length} bytes were given.", nameof(data));
        AddPending(new PendingTensor(name, dtype, shape.ToArray(), byteCount, data, null));
    }

    /// <summary>Adds a tensor whose bytes <paramref name="writeData"/> streams at write time (exactly the byte count).</summary>
    public void Add(string name, SafetensorsDType dtype, IReadOnlyList<long> shape, Action<Stream> writeData)
    {
        ArgumentNullException.ThrowIfNull(writeData);
        long byteCount = CheckedByteCount(name, dtype, shape);
        AddPending(new PendingTensor(name, dtype, shape.ToArray(), byteCount, null, writeData));
    }

    /// <summary>The 8-byte length followed by the padded JSON header.</summary>
    public byte[] BuildHeader()
    {
        var json = new StringBuilder();
        json.Append('{');
        bool first = true;
        if (_metadata is not null)
        {
            json.Append("\"__metadata__\":{");
            bool firstEntry = true;
            foreach (KeyValuePair<string, string> entry in _metadata)
            {
                if (!firstEntry)
                    json.Append(',');
                firstEntry = false;
                AppendJsonString(json, entry.Key);
                json.Append(':');
                AppendJsonString(json, entry.Value);
            }
            json.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (PendingTensor tensor in Ordered())
        {
            if (!first)
                json.Append(',');
            first = false;
            AppendJsonString(json, tensor.Name);
            json.Append(":{\"dtype\":\"").Append(tensor.DType.HeaderName()).Append("\",\"shape\":[");
            json.AppendJoin(',', tensor.Shape.Select(dimension => dimension.ToString(CultureInfo.InvariantCulture)));
            json.Append("],\"data_offsets\":[").Append(offset.ToString(CultureInfo.InvariantCulture)).Append(',');
            offset += tensor.ByteCount;
            json.Append(offset.ToString(CultureInfo.InvariantCulture)).Append("]}");
        }
        json.Append('}');

        int jsonByteCount = Encoding.UTF8.GetByteCount(json.ToString());
        int paddedByteCount = (jsonByteCount + 7) / 8 * 8;
        byte[] header = new byte[8 + paddedByteCount];
        BinaryPrimitives.WriteUInt64LittleEndian(header, (ulong)paddedByteCount);
        Encoding.UTF8.GetBytes(json.ToString(), header.AsSpan(8));
        header.AsSpan(8 + jsonByteCount).Fill((byte)' ');
        return header;
    }

    /// <summary>Writes header and data to <paramref name="stream"/> (seekable when any tensor streams through a callback).</summary>
    public void WriteTo(Stream stream)
    {
        if (!stream.CanSeek && _tensors.Any(tensor => tensor.WriteData is not null))
            throw new ArgumentException("Tensors added with a data callback need a seekable stream, so their byte counts can be checked.", nameof(stream));
        stream.Write(BuildHeader());
        foreach (PendingTensor tensor in Ordered())
        {
            if (tensor.Data is ReadOnlyMemory<byte> data)
            {
                stream.Write(data.Span);
                continue;
            }
            long before = stream.Position;
            tensor.WriteData!(stream);
            long written = stream.Position - before;
            if (written != tensor.ByteCount)
                throw new InvalidOperationException($"The data callback for tensor '{tensor.Name}' wrote {written} bytes, expected {tensor.ByteCount}.");
        }
    }

    /// <summary>Writes the file atomically: path.tmp, fsync, rename over <paramref name="path"/>.</summary>
    public void WriteFile(string path)
    {
        string temporaryPath = path + ".tmp";
        using (var stream = new FileStream(temporaryPath, FileMode.Create, FileAccess.ReadWrite, FileShare.None, bufferSize: 1 << 20))
        {
            WriteTo(stream);
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporaryPath, path, overwrite: true);
    }

    private IEnumerable<PendingTensor> Ordered() =>
        _tensors.OrderByDescending(tensor => tensor.DType).ThenBy(tensor => tensor.NameUtf8, Utf8Comparer.Instance);

    private void AddPending(PendingTensor tensor)
    {
        if (!_names.Add(tensor.Name))
            throw new ArgumentException($"Tensor '{tensor.Name}' was added twice.", nameof(tensor));
        _tensors.Add(tensor);
    }

    private static long CheckedByteCount(string name, SafetensorsDType dtype, IReadOnlyList<long> shape)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        if (name == "__metadata__")
            throw new ArgumentException("'__metadata__' is reserved and cannot name a tensor.", nameof(name));
        _ = dtype.ElementByteCount(); // rejects undefined enum values
        return SafetensorsDTypes.TryComputeByteCount(dtype, shape)
            ?? throw new ArgumentException($"Tensor '{name}' has a negative dimension or a byte count that overflows: [{string.Join(", ", shape)}].", nameof(shape));
    }

    /// <summary>serde_json's escaping: quote, backslash and control characters; everything else verbatim UTF-8.</summary>
    private static void AppendJsonString(StringBuilder json, string text)
    {
        json.Append('"');
        foreach (char character in text)
        {
            switch (character)
            {
                case '"': json.Append("\\\""); break;
                case '\\': json.Append("\\\\"); break;
                case '\n': json.Append("\\n"); break;
                case '\r': json.Append("\\r"); break;
                case '\t': json.Append("\\t"); break;
                case '\b': json.Append("\\b"); break;
                case '\f': json.Append("\\f"); break;
                default:
                    if (character < 0x20)
                        json.Append("\\u").Append(((int)character).ToString("x4", CultureInfo.InvariantCulture));
                    else
                        json.Append(character);
                    break;
            }
        }
        json.Append('"');
    }

    private sealed record PendingTensor(string Name, SafetensorsDType DType, long[] Shape, long ByteCount, ReadOnlyMemory<byte>? Data, Action<Stream>? WriteData)
    {
        public byte[] NameUtf8 { get; } = Encoding.UTF8.GetBytes(Name);
    }

    /// <summary>Rust's String ordering: lexicographic over UTF-8 bytes.</summary>
    private sealed class Utf8Comparer : IComparer<byte[]>
    {
        public static readonly Utf8Comparer Instance = new();

        public int Compare(byte[]? left, byte[]? right) => left.AsSpan().SequenceCompareTo(right);
    }
}
