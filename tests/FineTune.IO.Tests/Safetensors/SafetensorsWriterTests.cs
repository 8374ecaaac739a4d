using System.Text;
using FineTune.IO.Safetensors;
using Xunit;

namespace FineTune.IO.Tests.Safetensors;

/// <summary>Byte-exact checks against the reference serializer's own test vectors (tensor.rs tests, FORMATS.md §2.1).</summary>
public sealed class SafetensorsWriterTests
{
    private static byte[] F32Bytes(params float[] values)
    {
        byte[] bytes = new byte[values.Length * 4];
        for (int index = 0; index < values.Length; index++)
            BitConverter.TryWriteBytes(bytes.AsSpan(index * 4), values[index]);
        return bytes;
    }

    private static byte[] Serialize(SafetensorsWriter writer)
    {
        using var stream = new MemoryStream();
        writer.WriteTo(stream);
        return stream.ToArray();
    }

    [Fact]
    public void MatchesReferenceSerializationOfOneF32Tensor()
    {
        var writer = new SafetensorsWriter(metadata: null);
        writer.Add("attn.0", SafetensorsDType.F32, new long[] { 1, 2, 3 }, F32Bytes(0, 1, 2, 3, 4, 5));
        byte[] expected =
        {
            64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100,
            116, 121, 112, 101, 34, 58, 34, 70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34,
            58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95, 111, 102, 102, 115,
            101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63,
            0, 0, 0, 64, 0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
        };
        Assert.Equal(expected, Serialize(writer));
    }

    [Fact]
    public void PadsTheHeaderWithSpacesToAMultipleOfEight()
    {
        var writer = new SafetensorsWriter(metadata: null);
        writer.Add("attn0", SafetensorsDType.F32, new long[] { 1, 1, 2, 3 }, F32Bytes(0, 1, 2, 3, 4, 5));
        byte[] bytes = Serialize(writer);
        Assert.Equal(72, BitConverter.ToInt64(bytes, 0));
        string json = Encoding.UTF8.GetString(bytes, 8, 72);
        Assert.Equal("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}" + new string(' ', 7), json);
        Assert.Equal(8 + 72 + 24, bytes.Length);
    }

    [Fact]
    public void EmptyFilesMatchTheReference()
    {
        Assert.Equal(new byte[] { 8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32 }, Serialize(new SafetensorsWriter(metadata: null)));
        var withMetadata = new SafetensorsWriter(new Dictionary<string, string> { ["framework"] = "pt" });
        byte[] expected =
        {
            40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95,
            95, 34, 58, 123, 34, 102, 114, 97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112,
            116, 34, 125, 125, 32, 32, 32, 32, 32,
        };
        Assert.Equal(expected, Serialize(withMetadata));
    }

    [Fact]
    public void DefaultWriterPutsFormatPtMetadataFirstAndSortsByDtypeThenName()
    {
        var writer = new SafetensorsWriter();
        writer.Add("b", SafetensorsDType.BF16, new long[] { 2 }, new byte[4]);
        writer.Add("a", SafetensorsDType.BF16, new long[] { 1 }, new byte[2]);
        writer.Add("z", SafetensorsDType.F32, new long[] { 1 }, new byte[4]);
        writer.Add("flag", SafetensorsDType.BOOL, new long[] { 3 }, new byte[3]);
        writer.Add("step", SafetensorsDType.I64, Array.Empty<long>(), new byte[8]);
        byte[] header = writer.BuildHeader();
        string json = Encoding.UTF8.GetString(header, 8, header.Length - 8).TrimEnd(' ');
        // Descending dtype declaration order: I64, F32, BF16 (a before b), BOOL; offsets contiguous.
        Assert.Equal(
            "{\"__metadata__\":{\"format\":\"pt\"}," +
            "\"step\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]}," +
            "\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}," +
            "\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[12,14]}," +
            "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[14,18]}," +
            "\"flag\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[18,21]}}", json);
        Assert.Equal(0, (header.Length - 8) % 8);
        Assert.Equal(21, writer.DataByteCount);
    }

    [Fact]
    public void EscapesNamesAsSerdeJsonDoes()
    {
        var writer = new SafetensorsWriter(metadata: null);
        writer.Add("q\"\\\n\u0001é", SafetensorsDType.U8, new long[] { 0 }, ReadOnlyMemory<byte>.Empty);
        string json = Encoding.UTF8.GetString(writer.BuildHeader().AsSpan(8)).TrimEnd(' ');
        Assert.Equal("{\"q\\\"\\\\\\n\\u0001é\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", json);
    }

    [Fact]
    public void RejectsWrongByteCountsDuplicatesAndReservedNames()
    {
        var writer = new SafetensorsWriter();
        Assert.Throws<ArgumentException>(() => writer.Add("x", SafetensorsDType.F16, new long[] { 3 }, new byte[5]));
        writer.Add("x", SafetensorsDType.F16, new long[] { 3 }, new byte[6]);
        Assert.Throws<ArgumentException>(() => writer.Add("x", SafetensorsDType.F16, new long[] { 3 }, new byte[6]));
        Assert.Throws<ArgumentException>(() => writer.Add("__metadata__", SafetensorsDType.U8, new long[] { 1 }, new byte[1]));
        Assert.Throws<ArgumentException>(() => writer.Add("big", SafetensorsDType.F64, new long[] { long.MaxValue, 2 }, _ => { }));
    }

    [Fact]
    public void StreamedTensorsRoundTripThroughAFile()
    {
        using var directory = new TempDirectory();
        string path = directory.File("model.safetensors");
        var writer = new SafetensorsWriter();
        byte[] weights = new byte[3 * 5 * 2];
        new Random(3).NextBytes(weights);
        writer.Add("w", SafetensorsDType.BF16, new long[] { 3, 5 }, stream => stream.Write(weights));
        writer.Add("s", SafetensorsDType.F32, Array.Empty<long>(), F32Bytes(2.5f));
        writer.WriteFile(path);
        Assert.False(File.Exists(path + ".tmp"));

        using SafetensorsFile file = SafetensorsFile.Open(path);
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal(new[] { "s", "w" }, file.Tensors.Select(tensor => tensor.Name));
        SafetensorsTensorInfo w = file.GetTensor("w");
        Assert.Equal(new long[] { 3, 5 }, w.Shape);
        Assert.Equal(15, w.ElementCount);
        Assert.Equal(file.DataStartFileOffset + 4, w.FileOffset);
        byte[] read = new byte[30];
        file.ReadTensorBytes("w", read);
        Assert.Equal(weights, read);
        byte[] tail = new byte[10];
        file.ReadTensorBytes("w", 20, tail);
        Assert.Equal(weights.AsSpan(20).ToArray(), tail);
        byte[] scalar = new byte[4];
        file.ReadTensorBytes("s", scalar);
        Assert.Equal(2.5f, BitConverter.ToSingle(scalar));
        Assert.Throws<UserErrorException>(() => file.GetTensor("missing"));
    }

    [Fact]
    public void CallbackWritingTheWrongByteCountFails()
    {
        var writer = new SafetensorsWriter();
        writer.Add("w", SafetensorsDType.U8, new long[] { 4 }, stream => stream.Write(new byte[3]));
        Assert.Throws<InvalidOperationException>(() => writer.WriteTo(new MemoryStream()));
    }
}
