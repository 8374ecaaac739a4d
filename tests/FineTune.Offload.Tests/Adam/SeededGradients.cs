namespace FineTune.Offload.Tests.Adam;

/// <summary>
/// The SplitMix64 stream of Fixtures/adamw_reference.py: uniform floats in [-1, 1) from the top 24 bits of each
/// draw, so C# and Python produce the same float32 values bit for bit.
/// </summary>
internal static class SeededGradients
{
    public static float[] Uniform(ulong seed, int count)
    {
        var values = new float[count];
        ulong state = seed;
        for (int i = 0; i < count; i++)
        {
            state += 0x9E3779B97F4A7C15UL;
            ulong z = state;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            z ^= z >> 31;
            values[i] = (float)((z >> 40) / (double)(1 << 24) * 2.0 - 1.0);
        }
        return values;
    }

    /// <summary>Gradients of step <paramref name="step"/> as the fixture script draws them (scale 2^-(i % 8)).</summary>
    public static float[] ForStep(int step, int count)
    {
        float[] g = Uniform(1000 + (ulong)step, count);
        for (int i = 0; i < count; i++)
            g[i] *= MathF.Pow(2, -(i % 8));
        return g;
    }

    public static double LearningRate(int step) => 1e-3 * (1.0 - step / 200.0);
}
