using FineTune.Offload.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Adam;

public sealed unsafe class CpuAdamWTests
{
    private const int ElementCount = 4099;

    private static float[][] ReadFixture()
    {
        byte[] bytes = File.ReadAllBytes(Path.Combine(AppContext.BaseDirectory, "Fixtures", "adamw_reference.bin"));
        var snapshots = new float[4][];
        for (int s = 0; s < 4; s++)
        {
            snapshots[s] = new float[ElementCount];
            Buffer.BlockCopy(bytes, s * ElementCount * 4, snapshots[s], 0, ElementCount * 4);
        }
        return snapshots;
    }

    /// <summary>
    /// Relative error against max(|expected|, 0.1): a parameter passing near zero cannot keep relative precision in
    /// float arithmetic of any implementation (it cancels against updates of about lr), so tiny values are judged
    /// against the parameters' scale (initial values are uniform in [-1, 1)).
    /// </summary>
    private static void AssertRelative(double expected, double actual, double tolerance, int index)
    {
        double error = Math.Abs(actual - expected) / Math.Max(Math.Abs(expected), 0.1);
        Assert.True(error <= tolerance, $"element {index}: expected {expected:R}, got {actual:R} (relative error {error:E2})");
    }

    [Fact]
    public void HundredStepsMatchPyTorchAdamWAndTheDoubleReference()
    {
        float[][] fixture = ReadFixture();
        Assert.Equal(SeededGradients.Uniform(1, ElementCount), fixture[0]);
        float[] master = (float[])fixture[0].Clone();
        var m = new float[ElementCount];
        var v = new float[ElementCount];
        var weight = new float[ElementCount];
        var options = new AdamWOptions();
        var reference = new ScalarAdamWReference(fixture[0], options);
        int snapshot = 1;
        for (int step = 1; step <= 100; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            var scalars = AdamWStepScalars.For(options, step, SeededGradients.LearningRate(step));
            fixed (float* pm = master, pmm = m, pv = v, pg = g, pw = weight)
                Assert.True(CpuAdamW.Update(scalars, pm, pmm, pv, pg, ElementType.Float32, pw, ElementType.Float32, ElementCount));
            reference.Step(g, SeededGradients.LearningRate(step));
            Assert.Equal(master, weight);
            if (step is 1 or 10 or 100)
            {
                for (int i = 0; i < ElementCount; i++)
                {
                    AssertRelative(fixture[snapshot][i], master[i], 1e-6, i);
                    // Against double: the float master is rounded twice per step (half an ulp, 6e-8, each), so
                    // 100 steps may drift up to 1.2e-5 from a reference that never rounds it.
                    AssertRelative(reference.Params[i], master[i], 2 * 6e-8 * step, i);
                }
                snapshot++;
            }
        }
        // The parameters really moved: 100 steps of lr ~1e-3 with sign-varying gradients.
        Assert.True(master.Zip(fixture[0]).Max(p => Math.Abs(p.First - p.Second)) > 0.02f);
    }

    [Fact]
    public void BFloat16GradientsAreReadAsTheirFloatValues()
    {
        float[] initial = SeededGradients.Uniform(7, ElementCount);
        var options = new AdamWOptions { WeightDecay = 0.1 };
        var reference = new ScalarAdamWReference(initial, options);
        float[] master = (float[])initial.Clone();
        var m = new float[ElementCount];
        var v = new float[ElementCount];
        var weight = new ushort[ElementCount];
        for (int step = 1; step <= 20; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            ushort[] gBf16 = g.Select(LowPrecision.ToBFloat16).ToArray();
            float[] gRounded = gBf16.Select(LowPrecision.FromBFloat16).ToArray();
            fixed (float* pm = master, pmm = m, pv = v)
            fixed (ushort* pg = gBf16, pw = weight)
                CpuAdamW.Update(AdamWStepScalars.For(options, step, 1e-3), pm, pmm, pv, pg, ElementType.BFloat16, pw, ElementType.BFloat16, ElementCount);
            reference.Step(gRounded, 1e-3);
        }
        for (int i = 0; i < ElementCount; i++)
        {
            AssertRelative(reference.Params[i], master[i], 2 * 6e-8 * 20, i);
            Assert.Equal(NearestEvenBFloat16(master[i]), weight[i]);
        }
    }

    [Theory]
    [InlineData(ElementType.Float32)]
    [InlineData(ElementType.BFloat16)]
    [InlineData(ElementType.Float16)]
    public void LowPrecisionCopyIsTheRoundedMaster(ElementType weightType)
    {
        // Magnitudes from 2^-30 to 2^20 reach f16 subnormals, f16 overflow and every rounding case.
        float[] master = SeededGradients.Uniform(11, ElementCount).Select((x, i) => x * MathF.Pow(2, (i % 51) - 30)).ToArray();
        var m = new float[ElementCount];
        var v = new float[ElementCount];
        var g = new float[ElementCount];
        var weight = new byte[ElementCount * 4];
        fixed (float* pm = master, pmm = m, pv = v, pg = g)
        fixed (byte* pw = weight)
        {
            // Zero gradient and zero weight decay leave the master untouched, so the copy is a pure cast.
            var scalars = AdamWStepScalars.For(new AdamWOptions { WeightDecay = 0 }, 1, 1e-3);
            CpuAdamW.Update(scalars, pm, pmm, pv, pg, ElementType.Float32, pw, weightType, ElementCount);
            for (int i = 0; i < ElementCount; i++)
            {
                switch (weightType)
                {
                    case ElementType.Float32: Assert.Equal(master[i], ((float*)pw)[i]); break;
                    case ElementType.BFloat16: Assert.Equal(NearestEvenBFloat16(master[i]), ((ushort*)pw)[i]); break;
                    default: Assert.Equal(BitConverter.HalfToUInt16Bits((Half)master[i]), ((ushort*)pw)[i]); break;
                }
            }
        }
    }

    [Fact]
    public void UnscaleByPowerOfTwoIsBitIdenticalToUnscaledGradients()
    {
        float[] initial = SeededGradients.Uniform(3, ElementCount);
        float[] a = (float[])initial.Clone(), b = (float[])initial.Clone();
        float[] ma = new float[ElementCount], va = new float[ElementCount], mb = new float[ElementCount], vb = new float[ElementCount];
        float[] wa = new float[ElementCount], wb = new float[ElementCount];
        var options = new AdamWOptions();
        for (int step = 1; step <= 5; step++)
        {
            float[] g = SeededGradients.ForStep(step, ElementCount);
            float[] scaled = g.Select(x => x * 1024f).ToArray();
            fixed (float* pa = a, pma = ma, pva = va, pg = g, pwa = wa, pb = b, pmb = mb, pvb = vb, ps = scaled, pwb = wb)
            {
                CpuAdamW.Update(AdamWStepScalars.For(options, step, 1e-3), pa, pma, pva, pg, ElementType.Float32, pwa, ElementType.Float32, ElementCount);
                CpuAdamW.Update(AdamWStepScalars.For(options, step, 1e-3, 1.0 / 1024), pb, pmb, pvb, ps, ElementType.Float32, pwb, ElementType.Float32, ElementCount);
            }
        }
        Assert.Equal(a, b);
        Assert.Equal(va, vb);
    }

    [Theory]
    [InlineData(5, float.NaN)]
    [InlineData(40, float.PositiveInfinity)]
    [InlineData(ElementCount - 1, float.NegativeInfinity)]
    public void NonFiniteGradientIsReportedByTheFusedPass(int index, float bad)
    {
        float[] g = SeededGradients.ForStep(1, ElementCount);
        float[] p = new float[ElementCount], m = new float[ElementCount], v = new float[ElementCount], w = new float[ElementCount];
        fixed (float* pp = p, pm = m, pv = v, pw = w, pg = g)
        {
            var scalars = AdamWStepScalars.For(new AdamWOptions(), 1, 1e-3);
            Assert.True(CpuAdamW.Update(scalars, pp, pm, pv, pg, ElementType.Float32, pw, ElementType.Float32, ElementCount));
            g[index] = bad;
            Assert.False(CpuAdamW.Update(scalars, pp, pm, pv, pg, ElementType.Float32, pw, ElementType.Float32, ElementCount));
        }
    }

    /// <summary>Independent bf16 rounding: pick the nearer of the two neighbouring bf16 values, ties to even.</summary>
    internal static ushort NearestEvenBFloat16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        ushort down = (ushort)(bits >> 16);
        ushort up = (ushort)(down + 1);
        double errorDown = Math.Abs(value - (double)LowPrecision.FromBFloat16(down));
        // Past the largest bf16 the upper neighbour is infinity; for rounding it counts as 2^128 (IEEE 754 4.3.1).
        double upValue = (up & 0x7FFF) == 0x7F80 ? Math.CopySign(Math.Pow(2, 128), value) : LowPrecision.FromBFloat16(up);
        double errorUp = Math.Abs(value - upValue);
        if (errorDown < errorUp) return down;
        if (errorUp < errorDown) return up;
        return (down & 1) == 0 ? down : up;
    }
}
