namespace FineTune.Trainer.Training.Adapters;

/// <summary>
/// crc(A || B) from crc(A), crc(B) and |B| for CRC-32C (reflected polynomial 0x82F63B78, init and final xor
/// 0xFFFFFFFF), so a file's CRC can be assembled from the CRCs of its parts read in any order (the LoRA base is
/// read tensor by tensor in the model's order, not the file's). By linearity over GF(2),
/// crc(A || B) = crc(A) advanced over |B| zero bytes, xor crc(B); advancing over n zero bytes is multiplying the 32
/// state bits by a 32x32 bit matrix M^(8n), built by repeated squaring of the one-zero-bit operator M, so the cost
/// is O(log n) small matrix products whatever n is.
/// reference: M. Adler, zlib crc32.c crc32_combine (gf2_matrix_times, gf2_matrix_square) - the same identity.
/// </summary>
internal static class Crc32CCombine
{
    private const uint ReflectedPolynomial = 0x82F63B78u;

    public static uint Combine(uint crcA, uint crcB, long byteCountB)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteCountB);
        if (byteCountB == 0)
            return crcA;
        // operator: one zero bit. Row i is the image of state bit i: bit 0 leaves with the polynomial fed back.
        var power = new uint[32];
        power[0] = ReflectedPolynomial;
        for (int i = 1; i < 32; i++)
            power[i] = 1u << (i - 1);
        power = Square(Square(Square(power))); // 8 zero bits: one zero byte
        uint state = crcA;
        for (long n = byteCountB; n > 0; n >>= 1)
        {
            if ((n & 1) != 0)
                state = Times(power, state);
            if (n > 1)
                power = Square(power); // the operator for twice as many zero bytes
        }
        return state ^ crcB;
    }

    private static uint Times(uint[] matrix, uint vector)
    {
        uint sum = 0;
        for (int i = 0; vector != 0; i++, vector >>= 1)
            if ((vector & 1) != 0)
                sum ^= matrix[i];
        return sum;
    }

    private static uint[] Square(uint[] matrix)
    {
        var square = new uint[32];
        for (int i = 0; i < 32; i++)
            square[i] = Times(matrix, matrix[i]);
        return square;
    }
}
