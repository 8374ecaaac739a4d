using System.Buffers.Binary;
using System.Text;

namespace FineTune.Trainer.TensorBoard;

/// <summary>
/// A minimal protobuf wire-format encoder: varints, fixed32/64 and length-delimited fields, enough for the
/// handful of TensorBoard messages we write (Event, Summary, TensorProto, the hparams plugin data).
/// It is not a general protobuf library: no decoding, no reflection, fields are written in the order called.
/// Proto3 rules are the caller's business (omit defaults by not calling).
/// reference: https://protobuf.dev/programming-guides/encoding/ (key byte = (field &lt;&lt; 3) | wire type).
/// </summary>
internal sealed class ProtoWriter
{
    private const int WireVarint = 0;
    private const int WireFixed64 = 1;
    private const int WireLengthDelimited = 2;
    private const int WireFixed32 = 5;

    private byte[] _buffer = new byte[64];
    private int _byteCount;

    public int ByteCount => _byteCount;

    public byte[] ToArray() => _buffer.AsSpan(0, _byteCount).ToArray();

    public ProtoWriter Varint(int field, ulong value)
    {
        Key(field, WireVarint);
        RawVarint(value);
        return this;
    }

    /// <summary>int64/int32/enum fields: negative values are sign-extended to 64 bits (10 bytes), as protobuf does.</summary>
    public ProtoWriter Int64(int field, long value) => Varint(field, unchecked((ulong)value));

    public ProtoWriter Double(int field, double value)
    {
        Key(field, WireFixed64);
        BinaryPrimitives.WriteDoubleLittleEndian(Reserve(8), value);
        return this;
    }

    public ProtoWriter Float(int field, float value)
    {
        Key(field, WireFixed32);
        BinaryPrimitives.WriteSingleLittleEndian(Reserve(4), value);
        return this;
    }

    /// <summary>A packed repeated float field (proto3 default encoding for repeated scalars).</summary>
    public ProtoWriter PackedFloats(int field, ReadOnlySpan<float> values)
    {
        Key(field, WireLengthDelimited);
        RawVarint((ulong)(values.Length * 4));
        foreach (float value in values)
            BinaryPrimitives.WriteSingleLittleEndian(Reserve(4), value);
        return this;
    }

    public ProtoWriter String(int field, string value) => Bytes(field, Encoding.UTF8.GetBytes(value));

    public ProtoWriter Bytes(int field, ReadOnlySpan<byte> value)
    {
        Key(field, WireLengthDelimited);
        RawVarint((ulong)value.Length);
        value.CopyTo(Reserve(value.Length));
        return this;
    }

    /// <summary>An embedded message: encoded separately so its length prefix is known.</summary>
    public ProtoWriter Message(int field, Action<ProtoWriter> writeBody)
    {
        var body = new ProtoWriter();
        writeBody(body);
        return Bytes(field, body._buffer.AsSpan(0, body._byteCount));
    }

    private void Key(int field, int wireType) => RawVarint((ulong)((field << 3) | wireType));

    private void RawVarint(ulong value)
    {
        while (value >= 0x80)
        {
            Reserve(1)[0] = (byte)(value | 0x80);
            value >>= 7;
        }
        Reserve(1)[0] = (byte)value;
    }

    private Span<byte> Reserve(int byteCount)
    {
        if (_byteCount + byteCount > _buffer.Length)
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, _byteCount + byteCount));
        Span<byte> span = _buffer.AsSpan(_byteCount, byteCount);
        _byteCount += byteCount;
        return span;
    }
}
