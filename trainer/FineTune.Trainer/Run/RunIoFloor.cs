using FineTune.Offload.Bench;
using FineTune.Trainer.Planning;

namespace FineTune.Trainer.Runs;

/// <summary>
/// The I/O floor of a step, measured in the run itself on the drive under nvme_dir: reads and writes at once, at the
/// step's mix, in the swap's own pattern (<see cref="SequentialBandwidth.MeasureAtMix"/>: each extent read while the
/// one before is written back in place), about 4 GiB in all. A step that moves
/// B bytes cannot take less than B over this rate; the summary prints the step time as a multiple of it. Measured
/// only when a step moves at least <see cref="MinimumStepByteCount"/> (a second or a few, once).
/// </summary>
public sealed record RunIoFloor(double BytesPerSecond, double CpuSecondsPerByte, string Engine, long SampleByteCount)
{
    public const long MinimumStepByteCount = 1L << 30;

    private const long SampleBytes = 4L << 30;

    /// <summary>Seconds the drive needs for <paramref name="traffic"/> at this rate.</summary>
    public double SecondsFor(NvmeTraffic traffic) => (traffic.ReadBytes + traffic.WriteBytes) / BytesPerSecond;

    public static RunIoFloor? Measure(string? nvmeDirectory, NvmeTraffic planned)
    {
        long total = planned.ReadBytes + planned.WriteBytes;
        if (nvmeDirectory is null || total < MinimumStepByteCount || !Directory.Exists(nvmeDirectory))
            return null;
        long sample = Math.Min(SampleBytes, total);
        var (rate, cpu, engine) = SequentialBandwidth.MeasureAtMix(nvmeDirectory, planned.ReadBytes, planned.WriteBytes, sample);
        return new RunIoFloor(rate, cpu, engine, sample);
    }
}
