using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace FineTune.IO;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), as used by
/// TensorBoard's TFRecord framing, our checkpoint manifests and swap-extent integrity checks.
/// reference: RFC 3720 appendix B.4; test vector crc32c("123456789") = 0xE3069283.
///
/// Fast path (SSE4.2): the crc32 instruction has a latency of 3 cycles and a throughput of 1 per cycle, so one
/// dependency chain uses a third of it. Large inputs are cut into blocks of three equal lanes whose CRCs run as
/// three independent chains and are then combined: for raw (non-inverted) states, crc(A||B) = shift(crc(A), |B|) ^
/// crc0(B), where shift multiplies by x^(8|B|) mod P. shift for a fixed lane length is linear in the 32 state bits,
/// so it is precomputed as four 256-entry tables (the "shift by zeros" tables; reference: Mark Adler's crc32c.c,
/// crc32c_shift / crc32c_zeros). Fallback: the classic 256-entry byte table.
/// </summary>
public static unsafe class Crc32C
{
    private const uint Polynomial = 0x82F63B78u;
    private const uint MaskDelta = 0xa282ead8u;

    // Lane lengths of the two interleaved block sizes (multiples of 8; block = 3 lanes).
    private const int LongLaneByteCount = 8192;
    private const int ShortLaneByteCount = 256;

    private static readonly uint[] s_table = BuildTable();
    private static readonly uint[] s_longShift = BuildShiftTable(LongLaneByteCount);
    private static readonly uint[] s_shortShift = BuildShiftTable(ShortLaneByteCount);

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

    /// <summary>Portable byte-at-a-time update of a raw state (kept for machines without SSE4.2 and as the test oracle).</summary>
    internal static uint UpdateTable(uint state, ReadOnlySpan<byte> data)
    {
        foreach (byte b in data)
            state = s_table[(state ^ b) & 0xFF] ^ (state >> 8);
        return state;
    }

    /// <summary>Raw-state update with the crc32 instruction: three interleaved lanes on large inputs, one chain after.</summary>
    /// <remarks>AggressiveOptimization: a few calls on huge buffers would otherwise run tier-0/OSR code, far slower.</remarks>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static uint UpdateHardware(uint state, ReadOnlySpan<byte> data)
    {
        fixed (byte* start = data)
        {
            byte* pointer = start;
            long remaining = data.Length;
            while (remaining >= 3 * LongLaneByteCount)
            {
                state = ThreeLanes(state, pointer, LongLaneByteCount, s_longShift);
                pointer += 3 * LongLaneByteCount;
                remaining -= 3 * LongLaneByteCount;
            }
            while (remaining >= 3 * ShortLaneByteCount)
            {
                state = ThreeLanes(state, pointer, ShortLaneByteCount, s_shortShift);
                pointer += 3 * ShortLaneByteCount;
                remaining -= 3 * ShortLaneByteCount;
            }
            return SingleLane(state, pointer, remaining);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ThreeLanes(uint state, byte* pointer, int laneByteCount, uint[] shift)
    {
        ulong a = state, b = 0, c = 0;
        ulong* laneA = (ulong*)pointer;
        ulong* laneB = (ulong*)(pointer + laneByteCount);
        ulong* laneC = (ulong*)(pointer + 2 * laneByteCount);
        int words = laneByteCount / 8;
        for (int index = 0; index < words; index++)
        {
            a = Sse42.X64.Crc32(a, Unsafe.ReadUnaligned<ulong>(laneA + index));
            b = Sse42.X64.Crc32(b, Unsafe.ReadUnaligned<ulong>(laneB + index));
            c = Sse42.X64.Crc32(c, Unsafe.ReadUnaligned<ulong>(laneC + index));
        }
        uint combined = Shift(shift, (uint)a) ^ (uint)b;
        return Shift(shift, combined) ^ (uint)c;
    }

    private static uint SingleLane(uint state, byte* pointer, long byteCount)
    {
        ulong wide = state;
        for (; byteCount >= 8; byteCount -= 8, pointer += 8)
            wide = Sse42.X64.Crc32(wide, Unsafe.ReadUnaligned<ulong>(pointer));
        state = (uint)wide;
        for (; byteCount > 0; byteCount--, pointer++)
            state = Sse42.Crc32(state, *pointer);
        return state;
    }

    /// <summary>state x x^(8 L) mod P through the four byte tables of one lane length L.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Shift(uint[] table, uint state) =>
        table[state & 0xFF] ^ table[256 + ((state >> 8) & 0xFF)] ^ table[512 + ((state >> 16) & 0xFF)] ^ table[768 + (state >> 24)];

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

    /// <summary>
    /// Tables for shifting a raw state past <paramref name="zeroByteCount"/> zero bytes: the map is linear over GF(2),
    /// so it is fixed by the images of the 32 single-bit states, which are found by running the byte table over zeros.
    /// </summary>
    private static uint[] BuildShiftTable(int zeroByteCount)
    {
        Span<uint> basis = stackalloc uint[32];
        for (int bit = 0; bit < 32; bit++)
        {
            uint state = 1u << bit;
            for (int index = 0; index < zeroByteCount; index++)
                state = s_table[state & 0xFF] ^ (state >> 8);
            basis[bit] = state;
        }
        var shift = new uint[4 * 256];
        for (int lane = 0; lane < 4; lane++)
        for (int value = 0; value < 256; value++)
        {
            uint image = 0;
            for (int bit = 0; bit < 8; bit++)
            {
                if ((value & (1 << bit)) != 0)
                    image ^= basis[lane * 8 + bit];
            }
            shift[lane * 256 + value] = image;
        }
        return shift;
    }
}
