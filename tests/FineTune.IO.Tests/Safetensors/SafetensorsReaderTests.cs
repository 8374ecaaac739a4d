using System.Buffers.Binary;
using System.Text;
using FineTune.IO.Safetensors;
using Xunit;

namespace FineTune.IO.Tests.Safetensors;

/// <summary>The reader accepts the reference bytes and rejects every hand-made hostile header with a named reason.</summary>
public sealed class SafetensorsReaderTests : IDisposable
{
    private readonly TempDirectory _directory = new();

    public void Dispose() => _directory.Dispose();

    /// <summary>u64 N | json (N bytes unless overridden) | dataByteCount bytes 0,1,2,...</summary>
    internal static byte[] Raw(string json, int dataByteCount, ulong? declaredHeaderByteCount = null)
    {
        byte[] header = Encoding.UTF8.GetBytes(json);
        byte[] bytes = new byte[8 + header.Length + dataByteCount];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, declaredHeaderByteCount ?? (ulong)header.Length);
        header.CopyTo(bytes, 8);
        for (int index = 0; index < dataByteCount; index++)
            bytes[8 + header.Length + index] = (byte)index;
        return bytes;
    }

    private string WriteFile(byte[] bytes, string name = "t.safetensors")
    {
        string path = _directory.File(name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    [Fact]
    public void ReadsTheReferenceExample()
    {
        // tensor.rs test_serialization: attn.0 F32 [1,2,3] holding 0..5.
        byte[] data = new byte[24];
        for (int index = 0; index < 6; index++)
            BitConverter.TryWriteBytes(data.AsSpan(index * 4), (float)index);
        byte[] bytes = Raw("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", 0).Concat(data).ToArray();
        Assert.Equal(64, bytes[0]);
        string path = WriteFile(bytes);
        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal(64, file.HeaderByteCount);
        SafetensorsTensorInfo tensor = Assert.Single(file.Tensors);
        Assert.Equal(("attn.0", SafetensorsDType.F32, 24L, 72L), (tensor.Name, tensor.DType, tensor.ByteCount, tensor.FileOffset));
        Assert.Empty(file.Metadata);
        byte[] read = new byte[24];
        file.ReadTensorBytes("attn.0", read);
        Assert.Equal(5f, BitConverter.ToSingle(read, 20));
        Assert.Equal(new byte[] { 0, 0, 0x80, 0x3f }, read[4..8]);
    }

    [Fact]
    public void AcceptsOffsetsInAnyHeaderOrderScalarsAndZeroSizedTensors()
    {
        string json = "{\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[8,10]}," +
                      "\"e\":{\"dtype\":\"F32\",\"shape\":[0,7],\"data_offsets\":[8,8]}," +
                      "\"a\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},\"__metadata__\":{\"k\":\"v\"}}  ";
        using SafetensorsFile file = SafetensorsFile.Open(WriteFile(Raw(json, 10)));
        Assert.Equal(new[] { "b", "e", "a" }, file.Tensors.Select(tensor => tensor.Name));
        Assert.Equal("v", file.Metadata["k"]);
        Assert.Equal(0, file.GetTensor("e").ByteCount);
    }

    public static TheoryData<string, byte[], string> HostileFiles()
    {
        const string ok = "{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        return new TheoryData<string, byte[], string>
        {
            { "short", new byte[5], "fewer than the 8-byte" },
            { "huge N", Raw(ok, 8, 100_000_001), "exceeds the 100,000,000-byte limit" },
            { "N past end", Raw(ok, 8, 4096), "runs past the end" },
            { "N = max u64", Raw(ok, 8, ulong.MaxValue), "exceeds" },
            { "not utf8", Raw("{\"x?\":1}", 0).Select(b => b == (byte)'?' ? (byte)0xff : b).ToArray(), "UTF-8" },
            { "not json", Raw("{\"x\":", 0), "well-formed JSON" },
            { "array root", Raw("[1,2]", 0), "start with '{'" },
            { "leading space", Raw(" {}", 0), "start with '{'" },
            { "unknown dtype", Raw("{\"x\":{\"dtype\":\"F128\",\"shape\":[2],\"data_offsets\":[0,32]}}", 32), "unknown dtype 'F128'" },
            { "lowercase dtype", Raw("{\"x\":{\"dtype\":\"f32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "unknown dtype" },
            { "negative dim", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8), "non-negative integer" },
            { "fractional dim", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "non-negative integer" },
            { "string dim", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8), "non-negative integer" },
            { "overflowing shape", Raw("{\"x\":{\"dtype\":\"F64\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}", 8), "overflows" },
            { "shape too large for offsets", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8), "needs 12" },
            { "three offsets", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8,9]}}", 8), "must have 2 entries" },
            { "reversed offsets", Raw("{\"x\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8), "end before they begin" },
            { "missing shape", Raw("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "no shape array" },
            { "tensor not object", Raw("{\"x\":5}", 0), "must be an object" },
            { "gap", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12), "a gap" },
            { "overlap", Raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8), "an overlap" },
            { "trailing bytes", Raw(ok, 9), "the file has" },
            { "missing bytes", Raw(ok, 7), "the file has" },
            { "duplicate name", Raw("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}", 2), "appears twice" },
            { "metadata not strings", Raw("{\"__metadata__\":{\"a\":1}}", 0), "must be a string" },
            { "metadata not object", Raw("{\"__metadata__\":[]}", 0), "must be an object" },
            { "deep nesting", Raw("{\"x\":" + new string('[', 5000) + new string(']', 5000) + "}", 0), "well-formed JSON" },
            { "offset beyond long", Raw("{\"x\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", 1), "non-negative integer" },
        };
    }

    [Theory]
    [MemberData(nameof(HostileFiles))]
    public void HostileFilesAreRejectedWithANamedReason(string label, byte[] bytes, string expectedProblem)
    {
        string path = WriteFile(bytes, label.Replace(' ', '_') + ".safetensors");
        long before = GC.GetAllocatedBytesForCurrentThread();
        var error = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Contains(path, error.Message);
        Assert.Contains(expectedProblem, error.Message);
        Assert.IsAssignableFrom<UserErrorException>(error);
        Assert.True(allocated < 256 * 1024 + 64L * bytes.Length, $"{label}: allocated {allocated} bytes for a {bytes.Length}-byte file");
    }

    [Fact]
    public void MissingFileIsAUserError()
    {
        var error = Assert.Throws<UserErrorException>(() => SafetensorsFile.Open(_directory.File("absent.safetensors")));
        Assert.Contains("absent.safetensors", error.Message);
    }
}
