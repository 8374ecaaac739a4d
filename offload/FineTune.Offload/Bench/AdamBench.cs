using System.Diagnostics;
using System.Runtime.InteropServices;
using FineTune.Offload.Adam;
using FineTune.Torch;

namespace FineTune.Offload.Bench;

/// <summary>
/// Measures the fused CPU AdamW (bf16 gradients in, bf16 weight copy out, fp32 master/m/v updated in place) against
/// libtorch's torch::optim::AdamW on the same parameter count and values (fp32 parameter and gradient tensors, its
/// only CPU form), and against the bound a streaming kernel could reach: the triad bandwidth measured in the same
/// run divided by the bytes the fused pass moves per parameter. Each figure is the best of several steps after a
/// warm-up step (first touch, libtorch's state allocation).
/// </summary>
public static unsafe class AdamBench
{
    /// <summary>
    /// Bus traffic per parameter: reads master, m, v (12) and a bf16 gradient (2); writes master, m, v (12) and a
    /// bf16 weight (2), whose line is first read (write-allocate, 2), counted the same way as the triad's.
    /// </summary>
    public const int FusedBytesPerParam = 30;

    public static AdamBenchResult Run(long paramCount, int steps = 5, Action<string>? progress = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(paramCount, 1024);
        progress?.Invoke("measuring the stream triad");
        double triad = StreamTriad.MeasureBytesPerSecond(Math.Max(paramCount, 32L << 20));
        progress?.Invoke("timing the fused CPU AdamW");
        double ours = MeasureOurs(paramCount, steps);
        progress?.Invoke("timing libtorch's AdamW");
        double torch = MeasureTorch(paramCount, steps);
        return new AdamBenchResult(paramCount, Environment.ProcessorCount, ours, torch, triad, FusedBytesPerParam);
    }

    private static float Value(long i) => (float)((i * 2654435761L % 2001) - 1000) * 1e-3f;

    private static double MeasureOurs(long n, int steps)
    {
        var master = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 4096);
        var m = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 4096);
        var v = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 4096);
        var gradient = (ushort*)NativeMemory.AlignedAlloc((nuint)(n * 2), 4096);
        var weight = (ushort*)NativeMemory.AlignedAlloc((nuint)(n * 2), 4096);
        try
        {
            Parallel.For(0, (n + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount, c =>
            {
                long end = Math.Min(n, (c + 1) * CpuAdamW.ChunkElementCount);
                for (long i = c * CpuAdamW.ChunkElementCount; i < end; i++)
                {
                    master[i] = Value(i);
                    m[i] = 0;
                    v[i] = 0;
                    gradient[i] = LowPrecision.ToBFloat16(Value(i + 17));
                    weight[i] = 0;
                }
            });
            var options = new AdamWOptions();
            double best = 0;
            for (int step = 1; step <= steps + 1; step++)
            {
                AdamWStepScalars scalars = AdamWStepScalars.For(options, step, options.LearningRate);
                long start = Stopwatch.GetTimestamp();
                CpuAdamW.Update(scalars, master, m, v, gradient, ElementType.BFloat16, weight, ElementType.BFloat16, n);
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (step > 1)
                    best = Math.Max(best, n / seconds);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(master);
            NativeMemory.AlignedFree(m);
            NativeMemory.AlignedFree(v);
            NativeMemory.AlignedFree(gradient);
            NativeMemory.AlignedFree(weight);
        }
    }

    private static double MeasureTorch(long n, int steps)
    {
        var parameterData = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 4096);
        var gradientData = (float*)NativeMemory.AlignedAlloc((nuint)(n * 4), 4096);
        try
        {
            for (long i = 0; i < n; i++)
            {
                parameterData[i] = Value(i);
                gradientData[i] = LowPrecision.FromBFloat16(LowPrecision.ToBFloat16(Value(i + 17)));
            }
            using Tensor parameter = Torch.Torch.FromPointer((nint)parameterData, new[] { n }, DType.Float32);
            using Tensor gradient = Torch.Torch.FromPointer((nint)gradientData, new[] { n }, DType.Float32);
            parameter.RequiresGrad = true;
            parameter.Grad = gradient;
            using var optimizer = new TorchAdamW(new[] { parameter });
            double best = 0;
            for (int step = 1; step <= steps + 1; step++)
            {
                long start = Stopwatch.GetTimestamp();
                optimizer.Step();
                double seconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (step > 1)
                    best = Math.Max(best, n / seconds);
            }
            return best;
        }
        finally
        {
            NativeMemory.AlignedFree(parameterData);
            NativeMemory.AlignedFree(gradientData);
        }
    }
}
