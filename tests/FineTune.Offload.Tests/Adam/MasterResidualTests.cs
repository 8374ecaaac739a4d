using FineTune.Offload.Adam;
using System.Runtime.Intrinsics;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

public sealed unsafe class MasterResidualTests
{
    // upper halves: zero, the smallest, 1.0 and its odd neighbour, their negatives, the largest finite, -0 and an odd negative
    private static readonly ushort[] s_upperHalves = [0x0000, 0x0001, 0x3F80, 0x3F81, 0xBF80, 0xBF81, 0x7F7F, 0x8000, 0xC2FF];

    [Fact]
    public void EveryLowerHalfRoundTripsThroughWeightAndResidualAndOnlyTheDroppedTieMoves()
    {
        foreach (ushort upper in s_upperHalves)
        {
            var masters = new float[65536];
            for (int lower = 0; lower < 65536; lower++)
            {
                uint bits = ((uint)upper << 16) | (uint)lower;
                float master = BitConverter.UInt32BitsToSingle(bits);
                float kept = MasterResidual.Representable(master);
                bool droppedTie = lower == 0x8000 && (upper & 1) == 0; // rounds down to an even weight: d would be +0x8000
                Assert.Equal(droppedTie ? bits - 1 : bits, BitConverter.SingleToUInt32Bits(kept));
                ushort weight = LowPrecision.ToBFloat16(kept);
                Assert.Equal(LowPrecision.ToBFloat16(master), weight); // the weight never moves
                short residual = MasterResidual.Residual(kept, weight);
                Assert.Equal(BitConverter.SingleToUInt32Bits(kept), BitConverter.SingleToUInt32Bits(MasterResidual.Master(weight, residual)));
                masters[lower] = kept;
            }
            // the vector paths give the scalar bits
            var weights = masters.Select(LowPrecision.ToBFloat16).ToArray();
            var residuals = new short[masters.Length];
            var decoded = new float[masters.Length];
            fixed (float* m = masters, d = decoded)
            fixed (ushort* w = weights)
            fixed (short* r = residuals)
            {
                MasterResidual.Encode(m, w, r, masters.Length - 5); // a scalar tail too
                MasterResidual.Encode(m + masters.Length - 5, w + masters.Length - 5, r + masters.Length - 5, 5);
                MasterResidual.Decode(w, r, d, masters.Length);
            }
            for (int i = 0; i < masters.Length; i++)
                Assert.Equal(MasterResidual.Residual(masters[i], weights[i]), residuals[i]);
            Assert.Equal(masters.Select(BitConverter.SingleToUInt32Bits), decoded.Select(BitConverter.SingleToUInt32Bits));
        }
    }

    [Fact]
    public void VectorRepresentableMatchesScalar()
    {
        var random = new Random(7);
        var values = new float[4096];
        for (int i = 0; i < values.Length; i++)
            values[i] = BitConverter.UInt32BitsToSingle(i % 3 == 0 ? ((uint)random.Next(0, 1 << 15) << 17) | 0x8000u : (uint)random.NextInt64(0, 1L << 32));
        for (int i = 0; i + 16 <= values.Length; i += 16)
        {
            var v512 = System.Runtime.Intrinsics.Vector512.Create(values.AsSpan(i, 16));
            var v256 = System.Runtime.Intrinsics.Vector256.Create(values.AsSpan(i, 8));
            for (int k = 0; k < 16; k++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(MasterResidual.Representable(values[i + k])), MasterResidual.Representable(v512).AsUInt32()[k]);
            for (int k = 0; k < 8; k++)
                Assert.Equal(BitConverter.SingleToUInt32Bits(MasterResidual.Representable(values[i + k])), MasterResidual.Representable(v256).AsUInt32()[k]);
        }
    }

    [Fact]
    public void ResidualSegmentsUpdateToTheBitsOfWholeMasters()
    {
        const int n = (1 << 20) + 37; // 16 chunks and an odd tail: ~8 ties expected on the way
        var random = new Random(11);
        var masters = new float[n];
        var m = new float[n];
        var v = new float[n];
        var gradients = new ushort[n];
        for (int i = 0; i < n; i++)
        {
            masters[i] = MasterResidual.Representable((float)(random.NextDouble() * 2 - 1));
            m[i] = (float)(random.NextDouble() - 0.5) * 1e-3f;
            v[i] = (float)random.NextDouble() * 1e-6f;
            gradients[i] = LowPrecision.ToBFloat16((float)(random.NextDouble() - 0.5) * 1e-2f);
        }
        var scalars = AdamWStepScalars.For(new AdamWOptions { WeightDecay = 0.1 }, 3, 1e-3);
        // whole masters
        float[] wholeMasters = (float[])masters.Clone(), wholeM = (float[])m.Clone(), wholeV = (float[])v.Clone();
        var wholeWeights = new ushort[n];
        // residual masters, updated in place over their previous weights
        var weights = masters.Select(LowPrecision.ToBFloat16).ToArray();
        var residuals = new short[n];
        for (int i = 0; i < n; i++)
            residuals[i] = MasterResidual.Residual(masters[i], weights[i]);
        fixed (float* pm = wholeMasters, pmm = wholeM, pv = wholeV, rm = m, rv = v)
        fixed (ushort* pg = gradients, pw = wholeWeights, rw = weights)
        fixed (short* rr = residuals)
        {
            Assert.True(CpuAdamW.Update(scalars, pm, pmm, pv, pg, ElementType.BFloat16, pw, ElementType.BFloat16, n, 2));
            var segment = new AdamWSegment(0, (nint)rm, (nint)rv, (nint)pg, ElementType.BFloat16, (nint)rw, ElementType.BFloat16, n)
            {
                Residual = (nint)rr,
                PreviousWeight = (nint)rw,
            };
            Assert.True(CpuAdamW.Update(scalars, [segment], 2));
        }
        Assert.Equal(wholeWeights, weights);
        Assert.Equal(wholeM, m);
        Assert.Equal(wholeV, v);
        for (int i = 0; i < n; i++)
            Assert.Equal(BitConverter.SingleToUInt32Bits(wholeMasters[i]), BitConverter.SingleToUInt32Bits(MasterResidual.Master(weights[i], residuals[i])));
        Assert.All(wholeMasters, p => Assert.Equal(MasterResidual.Representable(p), p));
    }
}
