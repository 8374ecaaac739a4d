using System.Buffers.Binary;
using System.Text;

namespace FineTune.Trainer.Tests.TensorBoard;

/// <summary>
/// A TensorBoard event-file reader written from FORMATS.md §1.2-1.6 alone, sharing no code with the writer:
/// its own bitwise CRC-32C, its own protobuf wire decoder. Checks both CRCs of every record; a trailing partial
/// record is end of data (the writer may still be running), as TensorBoard's run.rs treats it.
/// </summary>
internal static class IndependentEventReader
{
    internal sealed record Value(string Tag, float? SimpleValue, int? Dtype, float[] FloatVal, string[] StringVal,
        long[] ShapeDims, string? PluginName, byte[] PluginContent);

    internal sealed record Event(double WallTime, long Step, string? FileVersion, int? SessionLogStatus, List<Value> Values);

    public static (List<Event> Events, bool Truncated) ReadFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        var (records, truncated) = ReadRecords(memory.ToArray());
        return (records.Select(ParseEvent).ToList(), truncated);
    }

    public static (List<byte[]> Records, bool Truncated) ReadRecords(byte[] file)
    {
        var records = new List<byte[]>();
        int offset = 0;
        while (offset < file.Length)
        {
            if (file.Length - offset < 12)
                return (records, true);
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(offset));
            uint lengthCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(offset + 8));
            if (lengthCrc != MaskedCrc(file.AsSpan(offset, 8)))
                throw new InvalidDataException($"length CRC mismatch at offset {offset}");
            if ((ulong)(file.Length - offset - 12) < length + 4)
                return (records, true);
            byte[] data = file.AsSpan(offset + 12, (int)length).ToArray();
            uint dataCrc = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(offset + 12 + (int)length));
            if (dataCrc != MaskedCrc(data))
                throw new InvalidDataException($"data CRC mismatch at offset {offset}");
            records.Add(data);
            offset += 12 + (int)length + 4;
        }
        return (records, false);
    }

    public static uint MaskedCrc(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data)
        {
            crc ^= b;
            for (int bit = 0; bit < 8; bit++)
                crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc ^= 0xFFFFFFFFu;
        return unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    public static Event ParseEvent(byte[] data)
    {
        double wallTime = 0; long step = 0; string? fileVersion = null; int? status = null;
        var values = new List<Value>();
        foreach (var f in Fields(data))
        {
            switch (f.Number)
            {
                case 1: wallTime = BitConverter.Int64BitsToDouble((long)f.Scalar); break;
                case 2: step = (long)f.Scalar; break;
                case 3: fileVersion = Encoding.UTF8.GetString(f.Bytes); break;
                case 5: values.AddRange(Fields(f.Bytes).Where(v => v.Number == 1).Select(v => ParseValue(v.Bytes))); break;
                case 7: status = (int)Fields(f.Bytes).Where(s => s.Number == 1).Select(s => s.Scalar).DefaultIfEmpty(0UL).First(); break;
            }
        }
        return new Event(wallTime, step, fileVersion, status, values);
    }

    private static Value ParseValue(byte[] data)
    {
        string tag = ""; float? simple = null; int? dtype = null; string? plugin = null; byte[] content = [];
        var floats = new List<float>(); var strings = new List<string>(); var dims = new List<long>();
        foreach (var f in Fields(data))
        {
            switch (f.Number)
            {
                case 1: tag = Encoding.UTF8.GetString(f.Bytes); break;
                case 2: simple = BitConverter.Int32BitsToSingle((int)f.Scalar); break;
                case 8:
                    foreach (var t in Fields(f.Bytes))
                    {
                        if (t.Number == 1) dtype = (int)t.Scalar;
                        if (t.Number == 2)
                            foreach (var dim in Fields(t.Bytes).Where(d => d.Number == 2))
                                dims.Add((long)Fields(dim.Bytes).Where(s => s.Number == 1).Select(s => s.Scalar).DefaultIfEmpty(0UL).First());
                        if (t.Number == 5)
                            for (int i = 0; i < t.Bytes.Length; i += 4)
                                floats.Add(BinaryPrimitives.ReadSingleLittleEndian(t.Bytes.AsSpan(i)));
                        if (t.Number == 8) strings.Add(Encoding.UTF8.GetString(t.Bytes));
                    }
                    break;
                case 9:
                    foreach (var pd in Fields(f.Bytes).Where(m => m.Number == 1))
                        foreach (var p in Fields(pd.Bytes))
                        {
                            if (p.Number == 1) plugin = Encoding.UTF8.GetString(p.Bytes);
                            if (p.Number == 2) content = p.Bytes;
                        }
                    break;
            }
        }
        return new Value(tag, simple, dtype, floats.ToArray(), strings.ToArray(), dims.ToArray(), plugin, content);
    }

    internal readonly record struct Field(int Number, int WireType, ulong Scalar, byte[] Bytes);

    /// <summary>Decodes one message level: varint (0), fixed64 (1), length-delimited (2), fixed32 (5).</summary>
    public static List<Field> Fields(byte[] data)
    {
        var fields = new List<Field>();
        int i = 0;
        while (i < data.Length)
        {
            ulong key = Varint(data, ref i);
            int number = (int)(key >> 3), wire = (int)(key & 7);
            switch (wire)
            {
                case 0: fields.Add(new(number, wire, Varint(data, ref i), [])); break;
                case 1: fields.Add(new(number, wire, BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(i)), [])); i += 8; break;
                case 5: fields.Add(new(number, wire, BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(i)), [])); i += 4; break;
                case 2:
                    int length = (int)Varint(data, ref i);
                    fields.Add(new(number, wire, 0, data.AsSpan(i, length).ToArray()));
                    i += length;
                    break;
                default: throw new InvalidDataException($"wire type {wire}");
            }
        }
        return fields;
    }

    private static ulong Varint(byte[] data, ref int i)
    {
        ulong value = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = data[i++];
            value |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }
    }
}
