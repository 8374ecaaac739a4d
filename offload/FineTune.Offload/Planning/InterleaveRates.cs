namespace FineTune.Offload.Planning;

/// <summary>
/// Measured rates the interleave planner works from (all per second; zero means "not available").
/// Measured by `finetune bench adam` / `bench optimizer` / `bench io`, or by a short probe at startup.
/// </summary>
public sealed record InterleaveRates
{
    /// <summary>Parameters per second of the fused CPU AdamW pass (all cores).</summary>
    public double CpuAdamWParamsPerSecond { get; init; }

    /// <summary>Sequential NVMe read bandwidth; zero when states are host-resident (no reads).</summary>
    public double NvmeReadBytesPerSecond { get; init; }

    /// <summary>Sequential NVMe write bandwidth; zero when states are host-resident.</summary>
    public double NvmeWriteBytesPerSecond { get; init; }

    /// <summary>Host-device copy bandwidth (one direction; copies to and from the device share it).</summary>
    public double HostDeviceBytesPerSecond { get; init; }

    /// <summary>Parameters per second of the device AdamW; zero without a device.</summary>
    public double DeviceAdamWParamsPerSecond { get; init; }

    /// <summary>Device memory free for optimizer buffers.</summary>
    public long FreeDeviceByteCount { get; init; }
}
