namespace FineTune.Torch.Blas;

/// <summary>
/// A measured matrix-product rate: (m, k) x (k, n) products (square for the smoke test), 2 m k n FLOPs each, timed over enough repetitions to
/// pass a minimum wall time after one warm-up product. On the CPU, fp32 runs on the BLAS and bf16 on oneDNN where
/// libtorch has it (AVX-512 BF16 or AMX makes it about twice fp32), else on libtorch's slow fallback. On CUDA the
/// device is synchronized before the clock starts and before it stops. Random inputs, never zeros, which some
/// kernels multiply faster than real data.
/// </summary>
public sealed record GemmRate(DType DType, Device Device, long M, long K, long N, int Repetitions, double Seconds)
{
    public double FlopsPerSecond => 2.0 * M * K * N * Repetitions / Seconds;

    /// <summary>The side of a square product (the smoke test's shape).</summary>
    public long Size => M;

    /// <summary>Times (n, n) @ (n, n) products of <paramref name="dtype"/> on <paramref name="device"/> (CPU by default) for at least <paramref name="minimumSeconds"/>.</summary>
    public static GemmRate Measure(DType dtype, int size = 512, double minimumSeconds = 0.25, Device? device = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 16);
        return Measure(dtype, size, size, size, minimumSeconds, device);
    }

    /// <summary>
    /// Times (m, k) @ (k, n) products: a model's own shape (tokens x hidden x intermediate), the rate its layers can
    /// reach, which `finetune plan` predicts compute from and `bench step` measures MFU against.
    /// </summary>
    public static GemmRate Measure(DType dtype, long m, long k, long n, double minimumSeconds, Device? device = null)
    {
        Device where = device ?? Device.Cpu;
        using var scope = TensorScope.Enter();
        using var generator = new Generator(1);
        var a = Torch.Randn([m, k], generator, DType.Float32, where).To(dtype); // (m, k)
        var b = Torch.Randn([k, n], generator, DType.Float32, where).To(dtype); // (k, n)
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
        return new GemmRate(dtype, where, m, k, n, repetitions, clock.Elapsed.TotalSeconds);
    }

    private static void Synchronize(Device device)
    {
        if (device.IsCuda)
            Cuda.Synchronize(device.Index);
    }
}
