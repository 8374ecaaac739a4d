using System.Diagnostics;
using System.Runtime.InteropServices;
using FineTune.Offload.Adam;

namespace FineTune.Offload.Bench;

/// <summary>A quick measure of the CPU AdamW's rate, for step-time predictions (the full bench is `finetune bench adam`).</summary>
public static class AdamRate
{
    /// <summary>The CPU AdamW over 4 Mi fp32 parameters with bf16 gradients and weights, on every core, for half a second.</summary>
    public static unsafe double ParamsPerSecond()
    {
        const long n = 1L << 22;
        var states = (float*)NativeMemory.AlignedAlloc((nuint)(12 * n), 64);
        var low = (ushort*)NativeMemory.AlignedAlloc((nuint)(4 * n), 64);
        try
        {
            new Span<byte>(states, (int)(12 * n)).Clear();
            new Span<ushort>(low, (int)(2 * n)).Fill(0x3c00);
            AdamWStepScalars scalars = AdamWStepScalars.For(new AdamWOptions(), step: 1, learningRate: 1e-4);
            CpuAdamW.Update(scalars, states, states + n, states + 2 * n, low, ElementType.BFloat16, low + n, ElementType.BFloat16, n); // warm-up
            var clock = Stopwatch.StartNew();
            int rounds = 0;
            do
            {
                CpuAdamW.Update(scalars, states, states + n, states + 2 * n, low, ElementType.BFloat16, low + n, ElementType.BFloat16, n);
                rounds++;
            }
            while (clock.Elapsed.TotalSeconds < 0.5);
            return rounds * (double)n / clock.Elapsed.TotalSeconds;
        }
        finally
        {
            NativeMemory.AlignedFree(states);
            NativeMemory.AlignedFree(low);
        }
    }
}
