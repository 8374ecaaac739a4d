using System.IO.Hashing;

namespace FineTune.IO;

/// <summary>
/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF), as used by
/// TensorBoard's TFRecord framing, our checkpoint manifests and swap-extent integrity checks. The bytes are hashed
/// by System.IO.Hashing's <see cref="Crc32"/> with <see cref="Crc32ParameterSet.Crc32C"/> (vectorized; the design
/// card's library), so the values on disk are the same as before: test vector crc32c("123456789") = 0xE3069283.
/// reference: RFC 3720 appendix B.4.
///
/// <see cref="Append"/> continues a finished CRC, which System.IO.Hashing cannot seed: it hashes the new bytes
/// alone and combines the two values by linearity, crc(A||B) = shift(crc(A), |B|) ^ crc(B), where shift advances
/// a CRC over |B| zero bytes as a 32x32 matrix over GF(2) raised by repeated squaring (O(log |B|) small products;
/// reference: zlib's crc32_combine, gf2_matrix_times / gf2_matrix_square).
/// </summary>
public static class Crc32C
{
    private const uint ReflectedPolynomial = 0x82F63B78u;
    private const uint MaskDelta = 0xa282ead8u;

    /// <summary>CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.HashToUInt32(Crc32ParameterSet.Crc32C, data);

    /// <summary>Continues a CRC: Append(Compute(a), b) == Compute(a ++ b).</summary>
    public static uint Append(uint crc, ReadOnlySpan<byte> data) =>
        data.IsEmpty ? crc : Combine(crc, Compute(data), data.Length);

    /// <summary>The CRC of A||B from crc(A), crc(B) and |B|.</summary>
    public static uint Combine(uint crcA, uint crcB, long byteCountB)
    {
        if (byteCountB <= 0)
            return crcA;
        Span<uint> odd = stackalloc uint[32];
        Span<uint> even = stackalloc uint[32];
        // odd: the operator for one zero bit
        odd[0] = ReflectedPolynomial;
        uint row = 1;
        for (int n = 1; n < 32; n++, row <<= 1)
            odd[n] = row;
        Square(even, odd); // two zero bits
        Square(odd, even); // four zero bits
        // each pass squares once more (8, 16, 32... zero bits = 1, 2, 4... bytes) and applies the operator for a set bit of |B|
        do
        {
            Square(even, odd);
            if ((byteCountB & 1) != 0)
                crcA = Times(even, crcA);
            byteCountB >>= 1;
            if (byteCountB == 0)
                break;
            Square(odd, even);
            if ((byteCountB & 1) != 0)
                crcA = Times(odd, crcA);
            byteCountB >>= 1;
        } while (byteCountB != 0);
        return crcA ^ crcB;
    }

    /// <summary>The TFRecord / LevelDB masked form of a CRC.</summary>
    public static uint Mask(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + MaskDelta);

    /// <summary>Inverse of <see cref="Mask"/>.</summary>
    public static uint Unmask(uint masked)
    {
        uint rotated = unchecked(masked - MaskDelta);
        return (rotated >> 17) | (rotated << 15);
    }

    private static uint Times(ReadOnlySpan<uint> matrix, uint vector)
    {
        uint sum = 0;
        for (int i = 0; vector != 0; i++, vector >>= 1)
            if ((vector & 1) != 0)
                sum ^= matrix[i];
        return sum;
    }

    private static void Square(Span<uint> square, ReadOnlySpan<uint> matrix)
    {
        for (int n = 0; n < 32; n++)
            square[n] = Times(matrix, matrix[n]);
    }
}
