namespace FineTune.Torch.Blas;

/// <summary>
/// A measured matrix-product rate: square n x n x n products, 2 n^3 FLOPs each, timed over enough repetitions to
/// pass a minimum wall time after one warm-up product. On the CPU, fp32 runs on the BLAS and bf16 on oneDNN where
/// libtorch has it (AVX-512 BF16 or AMX makes it about twice fp32), else on libtorch's slow fallback. On CUDA the
/// device is synchronized before the clock starts and before it stops. Random inputs, never zeros, which some
/// kernels multiply faster than real data.
/// </summary>
public sealed record GemmRate(DType DType, Device Device, int Size, int Repetitions, double Seconds)
{
    public double FlopsPerSecond => 2.0 * Size * (double)Size * Size * Repetitions / Seconds;

    /// <summary>Times (n, n) @ (n, n) products of <paramref name="dtype"/> on <paramref name="device"/> (CPU by default) for at least <paramref name="minimumSeconds"/>.</summary>
    public static GemmRate Measure(DType dtype, int size = 512, double minimumSeconds = 0.25, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 16);
        Device where = device ?? Device.Cpu;
        using var scope = TensorScope.Enter();
        using var generator = new Generator(1);
        var a = Torch.Randn([size, size], generator, DType.Float32, where).To(dtype); // (n, n)
        var b = Torch.Randn([size, size], generator, DType.Float32, where).To(dtype); // (n, n)
        Torch.MatMul(a, b).Dispose(); // warm-up: thread pool start, packing buffers, oneDNN primitive or cuBLAS handle creation
        Synchronize(where);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        int repetitions = 0;
        do
        {
            Torch.MatMul(a, b).Dispose();
            repetitions++;
            if (where.IsCuda && repetitions % 8 == 0)
                Synchronize(where); // keeps the host from queueing far past the clock
        }
        while (clock.Elapsed.TotalSeconds < minimumSeconds);
        Synchronize(where);
        return new GemmRate(dtype, where, size, repetitions, clock.Elapsed.TotalSeconds);
    }

    private static void Synchronize(Device device)
    {
        if (device.IsCuda)
            Cuda.Synchronize(device.Index);
    }
}
