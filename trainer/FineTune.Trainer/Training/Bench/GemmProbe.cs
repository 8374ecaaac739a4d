using System.Diagnostics;
using FineTune.Torch;

namespace FineTune.Trainer.Training.Bench;

/// <summary>
/// The CPU's matrix-multiply rate on all of libtorch's threads, for a given shape and dtype: repeated
/// (M, K) x (K, N) products for about <c>seconds</c>, 2 M K N FLOPs each. The limit MFU is measured against.
/// </summary>
public static class GemmProbe
{
    public static double FlopsPerSecond(long m, long k, long n, DType dtype, double seconds = 1.0)
    {
        using var scope = TensorScope.Enter();
        using var noGrad = FineTune.Torch.Torch.NoGrad();
        using var generator = new Generator(5);
        Tensor a = FineTune.Torch.Torch.Randn([m, k], generator).To(dtype);
        Tensor b = FineTune.Torch.Torch.Randn([k, n], generator).To(dtype);
        FineTune.Torch.Torch.MatMul(a, b).Dispose(); // warm-up: kernel selection, first touch
        long calls = 0;
        long start = Stopwatch.GetTimestamp();
        do
        {
            FineTune.Torch.Torch.MatMul(a, b).Dispose();
            calls++;
        }
        while (Stopwatch.GetElapsedTime(start).TotalSeconds < seconds);
        return 2.0 * m * k * n * calls / Stopwatch.GetElapsedTime(start).TotalSeconds;
    }
}
