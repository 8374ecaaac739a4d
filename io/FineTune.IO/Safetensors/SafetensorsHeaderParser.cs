using System.Text.Json;
using System.Text.Unicode;

namespace FineTune.IO.Safetensors;

/// <summary>
/// Validates and parses a safetensors header (the JSON after the 8-byte length). Every rule of the reference reader
/// is enforced, each failure a <see cref="SafetensorsFormatException"/> naming the file and the rule:
/// UTF-8, starts with '{', well-formed JSON object, `__metadata__` a string-to-string object, no duplicate names,
/// known dtype, non-negative integer shape and offsets, bytes == prod(shape) x dtype size without overflow, offsets
/// contiguous from 0 after sorting (no gaps or overlaps), and last end + 8 + N == file length.
/// reference: huggingface/safetensors safetensors/src/tensor.rs `read_metadata`, `Metadata::validate`.
/// Allocates only proportional to the header bytes, which the caller has already bounded by the file's length.
/// </summary>
internal static class SafetensorsHeaderParser
{
    /// <summary>Reference MAX_HEADER_SIZE.</summary>
    public const long MaxHeaderByteCount = 100_000_000;

    private const string MetadataKey = "__metadata__";

    public static (IReadOnlyList<SafetensorsTensorInfo> Tensors, IReadOnlyDictionary<string, string> Metadata) Parse(
        string path, ReadOnlySpan<byte> header, long fileByteCount)
    {
        if (!Utf8.IsValid(header))
            throw new SafetensorsFormatException(path, "the header is not valid UTF-8");
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafetensorsFormatException(path, "the header does not start with '{'");

        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(header.ToArray(), new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException exception)
        {
            throw new SafetensorsFormatException(path, $"the header is not well-formed JSON ({exception.Message})", exception);
        }

        using (document)
        {
            long dataStart = 8 + header.Length;
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var tensors = new List<SafetensorsTensorInfo>();
            var names = new HashSet<string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (JsonProperty property in document.RootElement.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata)
                        throw new SafetensorsFormatException(path, "the header has two __metadata__ entries");
                    sawMetadata = true;
                    ReadMetadata(path, property.Value, metadata);
                    continue;
                }
                if (!names.Add(property.Name))
                    throw new SafetensorsFormatException(path, $"tensor '{property.Name}' appears twice in the header");
                tensors.Add(ReadTensor(path, property.Name, property.Value, dataStart));
            }

            ValidateLayout(path, tensors, header.Length, fileByteCount);
            return (tensors, metadata);
        }
    }

    private static void ReadMetadata(string path, JsonElement element, Dictionary<string, string> metadata)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, "__metadata__ must be an object of strings");
        foreach (JsonProperty entry in element.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new SafetensorsFormatException(path, $"__metadata__ value '{entry.Name}' must be a string");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw new SafetensorsFormatException(path, $"__metadata__ key '{entry.Name}' appears twice");
        }
    }

    private static SafetensorsTensorInfo ReadTensor(string path, string name, JsonElement element, long dataStart)
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw new SafetensorsFormatException(path, $"tensor '{name}' must be an object with dtype, shape and data_offsets");
        // System.Text.Json would silently take one of two "dtype" (or "shape", "data_offsets") fields
        var fields = new HashSet<string>(StringComparer.Ordinal);
        foreach (JsonProperty field in element.EnumerateObject())
            if (!fields.Add(field.Name))
                throw new SafetensorsFormatException(path, $"tensor '{name}' has its field '{field.Name}' twice");
        if (!element.TryGetProperty("dtype", out JsonElement dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw new SafetensorsFormatException(path, $"tensor '{name}' has no string dtype");
        string dtypeText = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeText, out SafetensorsDType dtype))
            throw new SafetensorsFormatException(path, $"tensor '{name}' has unknown dtype '{dtypeText}' (supported: {string.Join(", ", Enum.GetNames<SafetensorsDType>())})");

        long[] shape = ReadIntegers(path, name, element, "shape", expectedCount: null);
        long[] offsets = ReadIntegers(path, name, element, "data_offsets", expectedCount: 2);
        if (offsets[1] < offsets[0])
            throw new SafetensorsFormatException(path, $"tensor '{name}' has data_offsets [{offsets[0]}, {offsets[1]}] that end before they begin");
        long? byteCount = SafetensorsDTypes.TryComputeByteCount(dtype, shape);
        if (byteCount is null)
            throw new SafetensorsFormatException(path, $"tensor '{name}' has a shape whose byte count overflows");
        if (byteCount != offsets[1] - offsets[0])
            throw new SafetensorsFormatException(path, $"tensor '{name}' spans {offsets[1] - offsets[0]} bytes but {dtype} [{string.Join(", ", shape)}] needs {byteCount}");
        return new SafetensorsTensorInfo(name, dtype, shape, offsets[0], offsets[1], dataStart);
    }

    private static long[] ReadIntegers(string path, string name, JsonElement element, string field, int? expectedCount)
    {
        if (!element.TryGetProperty(field, out JsonElement array) || array.ValueKind != JsonValueKind.Array)
            throw new SafetensorsFormatException(path, $"tensor '{name}' has no {field} array");
        int count = array.GetArrayLength();
        if (expectedCount is int expected && count != expected)
            throw new SafetensorsFormatException(path, $"tensor '{name}' {field} must have {expected} entries, not {count}");
        var values = new long[count];
        int index = 0;
        foreach (JsonElement item in array.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetInt64(out long value) || value < 0)
                throw new SafetensorsFormatException(path, $"tensor '{name}' {field} entry {index} must be a non-negative integer, not {item.GetRawText()}");
            values[index++] = value;
        }
        return values;
    }

    /// <summary>Sorted by offsets, tensors must tile [0, end) exactly and the file must end at 8 + N + end.</summary>
    private static void ValidateLayout(string path, List<SafetensorsTensorInfo> tensors, long headerByteCount, long fileByteCount)
    {
        var ordered = tensors.OrderBy(tensor => tensor.DataBegin).ThenBy(tensor => tensor.DataEnd).ToList();
        long expectedBegin = 0;
        foreach (SafetensorsTensorInfo tensor in ordered)
        {
            if (tensor.DataBegin != expectedBegin)
            {
                string problem = tensor.DataBegin > expectedBegin ? "a gap before it" : "an overlap with the previous tensor";
                throw new SafetensorsFormatException(path, $"tensor '{tensor.Name}' starts at data offset {tensor.DataBegin}, expected {expectedBegin} ({problem})");
            }
            expectedBegin = tensor.DataEnd;
        }
        long expectedFileByteCount = 8 + headerByteCount + expectedBegin;
        if (expectedFileByteCount != fileByteCount)
            throw new SafetensorsFormatException(path, $"the header describes {expectedFileByteCount} bytes (8 + {headerByteCount} header + {expectedBegin} data) but the file has {fileByteCount}");
    }
}
