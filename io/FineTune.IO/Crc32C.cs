using System.Runtime.Intrinsics.X86;

namespace FineTune.IO;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), as used by
/// TensorBoard's TFRecord framing, our checkpoint manifests and swap-extent integrity checks.
/// Uses the x86 SSE4.2 crc32 instruction when present, a table otherwise.
/// reference: RFC 3720 appendix B.4; test vector crc32c("123456789") = 0xE3069283.
/// </summary>
public static class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private const uint MaskDelta = 0xa282ead8u;
    private static readonly uint[] s_table = BuildTable();

    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Append(0, data);

    /// <summary>Continues a CRC: Append(Compute(a), b) == Compute(a ++ b).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data)
    {
        uint state = ~crc;
        state = Sse42.X64.IsSupported ? UpdateHardware(state, data) : UpdateTable(state, data);
        return ~state;
    }

    /// <summary>The TFRecord / LevelDB masked form of a CRC.</summary>
    public static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + MaskDelta);

    /// <summary>Inverse of <see cref="Mask"/>.</summary>
    public static uint Unmask(uint masked)
    {
        uint rotated = unchecked(masked - MaskDelta);
        return (rotated >> 17) | (rotated << 15);
    }

    internal static uint UpdateTable(uint state, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
            state = s_table[(state ^ b) & 0xFF] ^ (state >> 8);
        return state;
    }

    private static uint UpdateHardware(uint state, ReadOnlySpan<byte> data)
    {
        ulong wide = state;
        int index = 0;
        for (; index + 8 <= data.Length; index += 8)
            wide = Sse42.X64.Crc32(wide, BitConverter.ToUInt64(data.Slice(index, 8)));
        state = (uint)wide;
        for (; index < data.Length; index++)
            state = Sse42.Crc32(state, data[index]);
        return state;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint entry = i;
            for (int bit = 0; bit < 8; bit++)
                entry = (entry & 1) != 0 ? (entry >> 1) ^ Polynomial : entry >> 1;
            table[i] = entry;
        }
        return table;
    }
}
