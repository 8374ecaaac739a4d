using System.Runtime.Intrinsics;
using FineTune.Offload.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

public sealed class LowPrecisionTests
{
    private static readonly float[] s_specials =
    {
        0f, -0f, 1f, -1f, 65504f, 65519.99f, 65520f, 65536f, 1e10f, float.PositiveInfinity, float.NegativeInfinity,
        6.1035156e-05f, 6.1e-05f, 5.96e-08f, 2.98e-08f, 2.99e-08f, 1e-10f, 1.00048828125f, 1.000732421875f,
        BitConverter.UInt32BitsToSingle(0x3F808000), BitConverter.UInt32BitsToSingle(0x3F818000), float.MaxValue, float.Epsilon,
    };

    private static IEnumerable<float> Inputs()
    {
        var random = new Random(5);
        foreach (float special in s_specials)
            yield return special;
        for (int i = 0; i < 100_000; i++)
            yield return BitConverter.UInt32BitsToSingle((uint)random.NextInt64(0, 1L << 32));
    }

    [Fact]
    public void VectorFloat16MatchesTheHalfCastForEveryNonNaN()
    {
        float[] inputs = Inputs().Where(x => !float.IsNaN(x)).ToArray();
        for (int i = 0; i + 16 <= inputs.Length; i += 16)
        {
            Vector512<uint> wide = LowPrecision.ToFloat16(Vector512.Create(inputs, i));
            Vector256<uint> narrow = LowPrecision.ToFloat16(Vector256.Create(inputs, i));
            for (int j = 0; j < 16; j++)
            {
                ushort expected = BitConverter.HalfToUInt16Bits((Half)inputs[i + j]);
                Assert.Equal(expected, wide[j]);
                if (j < 8) Assert.Equal(expected, narrow[j]);
            }
        }
    }

    [Fact]
    public void VectorBFloat16MatchesNearestEvenAndQuietsNaN()
    {
        float[] inputs = Inputs().ToArray();
        for (int i = 0; i + 16 <= inputs.Length; i += 16)
        {
            Vector512<uint> wide = LowPrecision.ToBFloat16(Vector512.Create(inputs, i));
            for (int j = 0; j < 16; j++)
            {
                float x = inputs[i + j];
                ushort expected = float.IsNaN(x) ? (ushort)0x7FC0 : CpuAdamWTests.NearestEvenBFloat16(x);
                Assert.Equal(expected, wide[j]);
                Assert.Equal(expected, LowPrecision.ToBFloat16(x));
            }
        }
    }
}
