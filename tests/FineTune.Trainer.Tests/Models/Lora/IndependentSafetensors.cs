using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Json;

namespace FineTune.Trainer.Tests.Models.Lora;

/// <summary>
/// A safetensors reader written for the tests from the format's specification, sharing no code with FineTune's
/// (io/ Safetensors): u64 little-endian header length, a JSON object of name -> {dtype, shape, data_offsets} plus
/// __metadata__, then the data. Reads F32 tensors into float[] (and BF16/F16 widened), to check what FineTune
/// writes without trusting its own reader. reference: huggingface/safetensors README "Format".
/// </summary>
internal sealed class IndependentSafetensors
{
    private readonly byte[] _bytes;
    private readonly long _dataStart;

    private IndependentSafetensors(string path)
    {
        _bytes = File.ReadAllBytes(path);
        long headerLength = (long)BinaryPrimitives.ReadUInt64LittleEndian(_bytes.AsSpan(0, 8));
        _dataStart = 8 + headerLength;
        using JsonDocument header = JsonDocument.Parse(_bytes.AsMemory(8, (int)headerLength));
        foreach (JsonProperty entry in header.RootElement.EnumerateObject())
        {
            if (entry.Name == "__metadata__")
            {
                Metadata = entry.Value.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
                continue;
            }
            long[] offsets = entry.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
            Tensors[entry.Name] = (entry.Value.GetProperty("dtype").GetString()!,
                entry.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray(), offsets[0], offsets[1]);
        }
    }

    public Dictionary<string, string> Metadata { get; } = [];

    public Dictionary<string, (string DType, long[] Shape, long Begin, long End)> Tensors { get; } = new(StringComparer.Ordinal);

    /// <summary>Bytes of tensor data after the header.</summary>
    public long DataByteCount => _bytes.Length - _dataStart;

    public static IndependentSafetensors Read(string path) => new(path);

    public float[] Floats(string name)
    {
        var (dtype, _, begin, end) = Tensors[name];
        ReadOnlySpan<byte> data = _bytes.AsSpan((int)(_dataStart + begin), (int)(end - begin));
        return dtype switch
        {
            "F32" => MemoryMarshal.Cast<byte, float>(data).ToArray(),
            "BF16" => MemoryMarshal.Cast<byte, ushort>(data).ToArray().Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray(),
            "F16" => MemoryMarshal.Cast<byte, Half>(data).ToArray().Select(h => (float)h).ToArray(),
            _ => throw new NotSupportedException(dtype),
        };
    }
}
