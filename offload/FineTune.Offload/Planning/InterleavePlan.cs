namespace FineTune.Offload.Planning;

/// <summary>
/// The interleave planner's decision: which sub-groups update on the device, and the predicted time of each
/// resource in one optimizer step (the step takes as long as the slowest, since all of them run pipelined).
/// </summary>
public sealed record InterleavePlan(
    IReadOnlyList<bool> OnDevice,
    double PredictedSeconds,
    double CpuSeconds,
    double DeviceSeconds,
    double HostDeviceSeconds,
    double NvmeSeconds,
    string Reason)
{
    public int DeviceSubGroupCount => OnDevice.Count(d => d);

    public override string ToString() =>
        $"{DeviceSubGroupCount} of {OnDevice.Count} sub-groups on the device; predicted step {PredictedSeconds:0.000} s " +
        $"(CPU {CpuSeconds:0.000} s, device {DeviceSeconds:0.000} s, host-device copies {HostDeviceSeconds:0.000} s, NVMe {NvmeSeconds:0.000} s): {Reason}";
}
