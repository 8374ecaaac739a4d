using FineTune.Offload.Memory;
using Xunit;

namespace FineTune.Offload.Tests.Memory;

public sealed unsafe class HostMemoryPoolTests
{
    private static PoolPlan TwoClassPlan() => new PoolPlan()
        .Add(BufferKind.OptimizerStates, 3 * 4 * 1000, 3)   // 12,000 bytes -> 12,288 page-rounded
        .Add(BufferKind.OptimizerTailStates, 3 * 4 * 10, 1);      // 120 bytes -> 4,096

    [Fact]
    public void ExactPoolReservesPageRoundedExactSizes()
    {
        using HostMemoryPool pool = HostMemoryPool.Create(TwoClassPlan(), budgetByteCount: 1 << 20);
        Assert.Equal(3 * 12_288 + 4_096, pool.ReservedByteCount);
        Assert.Equal(3 * 12_288 + 4_096, TwoClassPlan().ReservedByteCount(PoolAllocatorKind.Exact));
        Assert.Equal(4, pool.BufferCount);
    }

    [Fact]
    public void BaselineSizesEveryBufferForTheLargestRoundedToPowerOfTwo()
    {
        using HostMemoryPool pool = HostMemoryPool.Create(TwoClassPlan(), 1 << 20, PoolAllocatorKind.Baseline);
        // largest class 12,000 bytes -> 16,384; four buffers.
        Assert.Equal(4 * 16_384, pool.ReservedByteCount);
        using HostLease tail = pool.Rent(BufferKind.OptimizerTailStates);
        Assert.Equal(120, tail.ByteCount);
        Assert.Equal(16_384, tail.BackingByteCount);
    }

    [Fact]
    public void ReservedBytesPredictedByThePlanAreWhatThePoolAllocates()
    {
        var plan = new PoolPlan().Add(BufferKind.ActivationCheckpoints, 100, 2).Add(BufferKind.Scratch, 5_000_001, 1);
        foreach (PoolAllocatorKind kind in new[] { PoolAllocatorKind.Exact, PoolAllocatorKind.Baseline })
        {
            using HostMemoryPool pool = HostMemoryPool.Create(plan, 1L << 30, kind);
            Assert.Equal(plan.ReservedByteCount(kind), pool.ReservedByteCount);
        }
        Assert.Equal(2 * 4096 + 5_001_216, plan.ReservedByteCount(PoolAllocatorKind.Exact));
        Assert.Equal(3 * 8_388_608, plan.ReservedByteCount(PoolAllocatorKind.Baseline));
        Assert.Equal(4096, new PoolPlan().Add(BufferKind.Scratch, 10, 1).BaselineBufferByteCount());
    }

    [Fact]
    public void LeasesArePageAlignedDistinctAndReturnThemselves()
    {
        using HostMemoryPool pool = HostMemoryPool.Create(TwoClassPlan(), 1 << 20);
        var leases = new List<HostLease> { pool.Rent(BufferKind.OptimizerStates), pool.Rent(BufferKind.OptimizerStates), pool.Rent(BufferKind.OptimizerStates), pool.Rent(BufferKind.OptimizerTailStates) };
        foreach (HostLease lease in leases)
            Assert.Equal(0, (long)lease.Pointer % HostAlignment.PageByteCount);
        Assert.Equal(4, leases.Select(l => (long)l.Pointer).Distinct().Count());
        Assert.Equal(pool.ReservedByteCount, pool.InUseByteCount);
        Assert.Throws<InvalidOperationException>(() => pool.Rent(BufferKind.OptimizerStates));
        foreach (HostLease lease in leases)
            lease.Dispose();
        Assert.Equal(0, pool.InUseByteCount);
        Assert.Equal(0, pool.OutstandingLeaseCount);
        Assert.Equal(pool.ReservedByteCount, pool.PeakInUseByteCount);
        Assert.Throws<InvalidOperationException>(() => leases[0].Dispose());
        Assert.Throws<ObjectDisposedException>(() => (long)leases[0].Pointer);
    }

    [Fact]
    public void WritesToOneLeaseDoNotReachAnother()
    {
        using HostMemoryPool pool = HostMemoryPool.Create(TwoClassPlan(), 1 << 20);
        using HostLease a = pool.Rent(BufferKind.OptimizerStates);
        using HostLease b = pool.Rent(BufferKind.OptimizerStates);
        a.AsSpan<float>(0, 3000).Fill(1.5f);
        b.AsSpan<float>(0, 3000).Fill(-2f);
        Assert.All(a.AsSpan<float>(0, 3000).ToArray(), x => Assert.Equal(1.5f, x));
        Assert.Throws<ArgumentOutOfRangeException>(() => a.AsSpan<float>(0, 3073));
    }

    [Fact]
    public void PlanOverBudgetIsRefusedWithOneSentenceNamingBudgetAndNeed()
    {
        var plan = new PoolPlan().Add(BufferKind.OptimizerStates, 3L << 30, 2); // 6 GiB
        var error = Assert.Throws<UserErrorException>(() => HostMemoryPool.Create(plan, 4L << 30));
        Assert.Contains("6 GiB", error.Message);
        Assert.Contains("host_gb is 4 GiB", error.Message);
        Assert.DoesNotContain("\n", error.Message);
    }

    [Fact]
    public void RegistrarSeesEachAllocationAtItsExactSizeAndIsUndone()
    {
        var registrar = new RecordingRegistrar();
        using (HostMemoryPool pool = HostMemoryPool.Create(TwoClassPlan(), 1 << 20, registrar: registrar))
        {
            Assert.Equal(new long[] { 12_288, 12_288, 12_288, 4_096 }, registrar.Registered.Values.OrderDescending().ToArray());
        }
        Assert.Empty(registrar.Registered);
    }

    [Fact]
    public void PeakResidentSetIsReadFromProc()
    {
        long current = ProcessMemory.ResidentByteCount();
        long peak = ProcessMemory.PeakResidentByteCount();
        Assert.True(peak >= current && current > 1 << 20, $"VmRSS {current}, VmHWM {peak}");
    }

    private sealed class RecordingRegistrar : IHostMemoryRegistrar
    {
        public Dictionary<long, long> Registered { get; } = new();

        public void Register(void* pointer, long byteCount) => Registered.Add((long)pointer, byteCount);

        public void Unregister(void* pointer) => Assert.True(Registered.Remove((long)pointer));
    }
}
