using FineTune.Offload.Adam;
using FineTune.Offload.Bench;
using FineTune.Torch;
using FineTune.Torch.Blas;
using FineTune.Trainer.Models;

namespace FineTune.Trainer.Planning;

/// <summary>
/// The rates a step-time prediction rests on: the matrix-product rate at the model's own shape and dtype, the CPU
/// AdamW's parameters per second on every core, the drive's bytes per second for reads and writes at once under
/// nvme_dir, the CPU time each byte of that I/O costs the process (the kernel's work for direct I/O), and on the CPU
/// one decoder layer's forward and backward at the model's shape (<see cref="Layer"/>). <see cref="Measure"/> times each on this machine (about two seconds, plus a few when NVMe is used);
/// <see cref="Assumed"/> states round figures instead, for tests and where measuring would cost more than the run.
/// </summary>
public sealed record MachineRates(double GemmFlopsPerSecond, double AdamParamsPerSecond, double NvmeBytesPerSecond, double IoCpuSecondsPerByte, bool Measured)
{
    /// <summary>A decoder layer of the model's shape timed on this machine (<see cref="WithLayer"/>; CPU only), or null: compute then follows the product rate.</summary>
    public LayerRate? Layer { get; init; }

    /// <summary>These rates with one decoder layer of <paramref name="config"/>'s shape timed as the step runs it (about a second at 3B).</summary>
    public MachineRates WithLayer(LlamaConfig config, DType dtype, int batch, int sequenceLength) =>
        this with { Layer = LayerRate.Measure(config, dtype, batch, sequenceLength) };

    public const double AssumedCpuFlopsPerSecondPerCore = 8e9;
    public const double AssumedCudaFlopsPerSecond = 200e12 * 0.4;
    public const double AssumedNvmeBytesPerSecond = 2e9;
    public const double AssumedCpuAdamWParamsPerSecondPerCore = 150e6;

    public static MachineRates Assumed(bool cuda)
    {
        int cores = Environment.ProcessorCount;
        return new MachineRates(cuda ? AssumedCudaFlopsPerSecond : AssumedCpuFlopsPerSecondPerCore * cores,
            AssumedCpuAdamWParamsPerSecondPerCore * cores, AssumedNvmeBytesPerSecond, IoCpuSecondsPerByte: 0, Measured: false);
    }

    /// <param name="dtype">The compute dtype.</param>
    /// <param name="m">Rows of a layer's products: tokens per micro-batch.</param>
    /// <param name="k">The hidden size.</param>
    /// <param name="n">The intermediate size.</param>
    /// <param name="nvmeDirectory">Where the swap goes; null: no drive to measure (its rate is then the assumed one).</param>
    /// <param name="traffic">A step's NVMe traffic: the drive is measured at its mix of reads and writes.</param>
    public static MachineRates Measure(DType dtype, long m, long k, long n, string? nvmeDirectory, NvmeTraffic traffic)
    {
        double nvme = AssumedNvmeBytesPerSecond, ioCpu = 0;
        long total = traffic.ReadBytes + traffic.WriteBytes;
        if (nvmeDirectory is not null && Directory.Exists(nvmeDirectory) && total > 0)
        {
            (nvme, ioCpu, _) = SequentialBandwidth.MeasureAtMix(nvmeDirectory, traffic.ReadBytes, traffic.WriteBytes, Math.Clamp(total, 256L << 20, 4L << 30));
        }
        return Measure(dtype, m, k, n, nvme, ioCpu);
    }

    /// <summary>The products and AdamW measured now, with a drive rate measured already (a run's I/O floor).</summary>
    public static MachineRates Measure(DType dtype, long m, long k, long n, double nvmeBytesPerSecond, double ioCpuSecondsPerByte) =>
        new(GemmRate.Measure(dtype, m, k, n, minimumSeconds: 0.5).FlopsPerSecond, AdamRate.ParamsPerSecond(), nvmeBytesPerSecond, ioCpuSecondsPerByte, Measured: true);
}
