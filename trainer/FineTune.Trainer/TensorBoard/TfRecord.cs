using System.Buffers.Binary;
using FineTune.IO;

namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// TFRecord framing of one record: uint64 LE length, masked CRC-32C of those 8 bytes, the data, masked CRC-32C
/// of the data. Record size = 8 + 4 + length + 4.
/// reference: FORMATS.md §1.2; tensorboard/summary/writer/record_writer.py.
/// </summary>
internal static class TfRecord
{
    public const int HeaderByteCount = 12;
    public const int FooterByteCount = 4;

    public static byte[] Frame(ReadOnlySpan<byte> data)
    {
        var record = new byte[HeaderByteCount + data.Length + FooterByteCount];
        BinaryPrimitives.WriteUInt64LittleEndian(record, (ulong)data.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(8), Crc32C.Mask(Crc32C.Compute(record.AsSpan(0, 8))));
        data.CopyTo(record.AsSpan(HeaderByteCount));
        BinaryPrimitives.WriteUInt32LittleEndian(record.AsSpan(HeaderByteCount + data.Length), Crc32C.Mask(Crc32C.Compute(data)));
        return record;
    }
}
