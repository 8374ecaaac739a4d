namespace FineTune.Offload.Planning;

/// <summary>
/// Decides which sub-groups the device updates while the CPU updates the others, so both finish together
/// (the Deep Optimizer States idea), from measured rates and free device memory.
///
/// Cost model per step, every resource pipelined, so the step takes the maximum of:
///   NVMe:        every sub-group's states (12 bytes/param) read and written once, whoever updates them;
///   CPU:         params of CPU sub-groups / CPU AdamW rate;
///   device:      params of device sub-groups / device AdamW rate;
///   host-device: device sub-groups move their states both ways (24 bytes/param); CPU sub-groups move their
///                bf16 gradients down and bf16 weights up (4 bytes/param).
/// The device needs two state buffers of the largest sub-group (one updating, one copying); without them, or
/// without a device rate, the device share is zero. Among the best splits the one with fewest device sub-groups
/// wins, and the chosen sub-groups are spread evenly through the order so both sides stream side by side.
/// </summary>
public static class InterleavePlanner
{
    public const int StateBytesPerParam = 12;
    public const int CpuPathTransferBytesPerParam = 4;

    public static InterleavePlan Plan(IReadOnlyList<long> subGroupElementCounts, InterleaveRates rates, bool statesOnNvme)
    {
        ArgumentNullException.ThrowIfNull(subGroupElementCounts);
        if (rates.CpuAdamWParamsPerSecond <= 0)
            throw new ArgumentException("The CPU AdamW rate must be measured (positive).", nameof(rates));
        int count = subGroupElementCounts.Count;
        long total = subGroupElementCounts.Sum();
        double nvme = statesOnNvme ? NvmeSeconds(total, rates) : 0;
        long largest = count == 0 ? 0 : subGroupElementCounts.Max();
        string reason;
        if (rates.DeviceAdamWParamsPerSecond <= 0 || rates.HostDeviceBytesPerSecond <= 0)
            reason = "no device";
        else if (rates.FreeDeviceByteCount < 2L * StateBytesPerParam * largest)
            reason = $"the device has {rates.FreeDeviceByteCount:N0} bytes free, less than two sub-group state buffers ({2L * StateBytesPerParam * largest:N0} bytes)";
        else
            reason = "";
        if (reason.Length > 0)
            return Evaluate(subGroupElementCounts, new bool[count], rates, nvme, reason);

        InterleavePlan? best = null;
        for (int deviceCount = 0; deviceCount <= count; deviceCount++)
        {
            InterleavePlan candidate = Evaluate(subGroupElementCounts, Spread(count, deviceCount), rates, nvme, "");
            // Strictly better only, so ties keep fewer device sub-groups.
            if (best is null || candidate.PredictedSeconds < best.PredictedSeconds * (1 - 1e-9))
                best = candidate;
        }
        string why = best!.PredictedSeconds <= best.NvmeSeconds * (1 + 1e-9) && best.NvmeSeconds > 0
            ? "NVMe bandwidth bounds the step"
            : best.DeviceSubGroupCount == 0 ? "the CPU alone is fastest" : "CPU and device finish together";
        return best with { Reason = why };
    }

    /// <summary><paramref name="deviceCount"/> of <paramref name="count"/> positions, spread evenly (Bresenham).</summary>
    public static bool[] Spread(int count, int deviceCount)
    {
        var onDevice = new bool[count];
        for (int i = 0; i < deviceCount; i++)
            onDevice[(int)((long)i * count / deviceCount)] = true;
        return onDevice;
    }

    private static double NvmeSeconds(long elements, InterleaveRates rates)
    {
        if (rates.NvmeReadBytesPerSecond <= 0 || rates.NvmeWriteBytesPerSecond <= 0)
            throw new ArgumentException("States on NVMe need measured NVMe read and write rates.", nameof(rates));
        double bytes = (double)StateBytesPerParam * elements;
        return bytes / rates.NvmeReadBytesPerSecond + bytes / rates.NvmeWriteBytesPerSecond;
    }

    private static InterleavePlan Evaluate(IReadOnlyList<long> counts, bool[] onDevice, InterleaveRates rates, double nvme, string reason)
    {
        long cpuElements = 0, deviceElements = 0;
        for (int i = 0; i < counts.Count; i++)
        {
            if (onDevice[i]) deviceElements += counts[i];
            else cpuElements += counts[i];
        }
        double cpu = cpuElements / rates.CpuAdamWParamsPerSecond;
        double device = deviceElements == 0 ? 0 : deviceElements / rates.DeviceAdamWParamsPerSecond;
        double copies = rates.HostDeviceBytesPerSecond <= 0 ? 0
            : (2.0 * StateBytesPerParam * deviceElements + (double)CpuPathTransferBytesPerParam * cpuElements) / rates.HostDeviceBytesPerSecond;
        double predicted = Math.Max(Math.Max(cpu, device), Math.Max(copies, nvme));
        return new InterleavePlan(onDevice, predicted, cpu, device, copies, nvme, reason);
    }
}
