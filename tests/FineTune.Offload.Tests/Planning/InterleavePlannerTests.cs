using FineTune.Offload.Planning;
using Xunit;

namespace FineTune.Offload.Tests.Planning;

public sealed class InterleavePlannerTests
{
    private static readonly long[] s_tenGroups = Enumerable.Repeat(100_000_000L, 10).ToArray();

    private static readonly InterleaveRates s_gpu = new()
    {
        CpuAdamWParamsPerSecond = 1e9,
        DeviceAdamWParamsPerSecond = 4e9,
        HostDeviceBytesPerSecond = 100e9,
        FreeDeviceByteCount = 100L << 30,
    };

    [Fact]
    public void CpuOnlyMachineKeepsEverySubGroupOnTheCpu()
    {
        var rates = new InterleaveRates { CpuAdamWParamsPerSecond = 1e9, NvmeReadBytesPerSecond = 2e9, NvmeWriteBytesPerSecond = 1e9 };
        InterleavePlan plan = InterleavePlanner.Plan(Enumerable.Repeat(100_000_000L, 4).ToArray(), rates, statesOnNvme: true);
        Assert.Equal(0, plan.DeviceSubGroupCount);
        Assert.Equal(0.4, plan.CpuSeconds, 12);
        // 4.8 GB read at 2 GB/s + written at 1 GB/s.
        Assert.Equal(7.2, plan.NvmeSeconds, 12);
        Assert.Equal(7.2, plan.PredictedSeconds, 12);
        Assert.Equal("no device", plan.Reason);
    }

    [Fact]
    public void SplitMakesCpuDeviceAndCopiesFinishTogether()
    {
        // d device groups: CPU (10-d) x 0.1 s, device d x 0.025 s, copies (24 d + 4 (10-d)) x 1e8 B / 1e11 B/s.
        // d = 8 gives 0.2 s on all three; d = 7 leaves the CPU at 0.3 s, d = 9 the device at 0.225 s.
        InterleavePlan plan = InterleavePlanner.Plan(s_tenGroups, s_gpu, statesOnNvme: false);
        Assert.Equal(8, plan.DeviceSubGroupCount);
        Assert.Equal(0.2, plan.PredictedSeconds, 9);
        Assert.Equal(0.2, plan.CpuSeconds, 9);
        Assert.Equal(0.2, plan.DeviceSeconds, 9);
        Assert.Equal(0.2, plan.HostDeviceSeconds, 9);
        Assert.Equal("CPU and device finish together", plan.Reason);
    }

    [Fact]
    public void TooLittleDeviceMemoryMeansNoDeviceShare()
    {
        InterleavePlan plan = InterleavePlanner.Plan(s_tenGroups, s_gpu with { FreeDeviceByteCount = 2L * 12 * 100_000_000 - 1 }, statesOnNvme: false);
        Assert.Equal(0, plan.DeviceSubGroupCount);
        Assert.Equal(1.0, plan.PredictedSeconds, 12);
        Assert.Contains("less than two sub-group state buffers (2,400,000,000 bytes)", plan.Reason);
    }

    [Fact]
    public void NvmeBoundStepUsesNoDeviceBecauseNothingIsGained()
    {
        var rates = s_gpu with { NvmeReadBytesPerSecond = 1e9, NvmeWriteBytesPerSecond = 1e9 };
        InterleavePlan plan = InterleavePlanner.Plan(s_tenGroups, rates, statesOnNvme: true);
        Assert.Equal(24.0, plan.PredictedSeconds, 9);
        Assert.Equal(0, plan.DeviceSubGroupCount);
        Assert.Equal("NVMe bandwidth bounds the step", plan.Reason);
    }

    [Fact]
    public void DeviceSubGroupsAreSpreadEvenly()
    {
        Assert.Equal(new[] { true, false, true, false, false, true, false, true, false, false }, InterleavePlanner.Spread(10, 4));
        Assert.All(InterleavePlanner.Spread(7, 7), Assert.True);
        Assert.All(InterleavePlanner.Spread(7, 0), Assert.False);
    }
}
