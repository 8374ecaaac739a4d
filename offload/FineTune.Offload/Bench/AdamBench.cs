using System.Diagnostics;
using System.Runtime.InteropServices;
using FineTune.Offload.Adam;
using FineTune.Torch;

namespace FineTune.Offload.Bench;

/// <summary>
/// Measures the fused CPU AdamW (bf16 gradients in, bf16 weight copy out, fp32 master/m/v updated in place) against
/// libtorch's torch::optim::AdamW on the same parameter count and values (fp32 parameter and gradient tensors, its
/// only CPU form), and against the bound a streaming kernel could reach: the triad bandwidth divided by the bytes
/// the fused pass moves per parameter. Each round runs one triad pass, one fused step and one libtorch step back to
/// back, so all three see the same machine (a shared host's load changes by the second); each figure is the best
/// over the rounds after a warm-up round (first touch, libtorch's state allocation).
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
        long n = paramCount;
        var allocations = new List<nint>();
        T* Allocate<T>(long count) where T : unmanaged
        {
            var pointer = (T*)NativeMemory.AlignedAlloc((nuint)(count * sizeof(T)), 4096);
            allocations.Add((nint)pointer);
            return pointer;
        }
        try
        {
            progress?.Invoke("filling the buffers");
            float* master = Allocate<float>(n), m = Allocate<float>(n), v = Allocate<float>(n);
            ushort* gradient = Allocate<ushort>(n), weight = Allocate<ushort>(n);
            float* torchParameter = Allocate<float>(n), torchGradient = Allocate<float>(n);
            Parallel.For(0, (n + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount, c =>
            {
                long end = Math.Min(n, (c + 1) * CpuAdamW.ChunkElementCount);
                for (long i = c * CpuAdamW.ChunkElementCount; i < end; i++)
                {
                    master[i] = torchParameter[i] = Value(i);
                    m[i] = v[i] = 0;
                    gradient[i] = LowPrecision.ToBFloat16(Value(i + 17));
                    torchGradient[i] = LowPrecision.FromBFloat16(gradient[i]);
                    weight[i] = 0;
                }
            });
            using var triad = new StreamTriad(Math.Max(n, 32L << 20));
            using var scope = TensorScope.Enter();
            Tensor parameter = Torch.Torch.FromPointer((nint)torchParameter, new[] { n }, DType.Float32);
            parameter.RequiresGrad = true;
            parameter.Grad = Torch.Torch.FromPointer((nint)torchGradient, new[] { n }, DType.Float32);
            using var torchAdamW = new TorchAdamW(new[] { parameter });
            var options = new AdamWOptions();
            double ours = 0, torch = 0, bandwidth = 0;
            for (int step = 1; step <= steps + 1; step++)
            {
                progress?.Invoke($"round {step} of {steps + 1}: triad pass, fused AdamW step, libtorch AdamW step");
                double triadPass = triad.MeasureOnce();
                AdamWStepScalars scalars = AdamWStepScalars.For(options, step, options.LearningRate);
                long start = Stopwatch.GetTimestamp();
                CpuAdamW.Update(scalars, master, m, v, gradient, ElementType.BFloat16, weight, ElementType.BFloat16, n);
                double oursSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                start = Stopwatch.GetTimestamp();
                torchAdamW.Step();
                double torchSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;
                if (step == 1)
                    continue;
                bandwidth = Math.Max(bandwidth, triadPass);
                ours = Math.Max(ours, n / oursSeconds);
                torch = Math.Max(torch, n / torchSeconds);
            }
            return new AdamBenchResult(paramCount, Environment.ProcessorCount, ours, torch, bandwidth, FusedBytesPerParam);
        }
        finally
        {
            foreach (nint pointer in allocations)
                NativeMemory.AlignedFree((void*)pointer);
        }
    }

    private static float Value(long i) => (float)((i * 2654435761L % 2001) - 1000) * 1e-3f;
}
