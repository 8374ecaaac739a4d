using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
using FineTune.Offload.Rings;
using FineTune.Offload.Swap;
using FineTune.Offload.Tests.Adam;
using Xunit;

namespace FineTune.Offload.Tests.Optimizer;

public sealed class SwapFaultTests
{
    [Fact]
    public void FailedWriteFailsTheStepAndDisposeStillFreesEverything()
    {
        using var parameters = new TestParameters(new long[] { 5000 }, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, 5000));
        FailingStore? store = null;
        var optimizer = PartitionedOptimizer.Create(parameters.Parameters,
            new PartitionedOptimizerOptions { SubGroupElementCount = 1024, Tier = StateTier.MemorySwap },
            extents => store = new FailingStore(extents, failOnWrite: 5 + 3)); // 5 initial writes, then the 3rd of step 1
        parameters.SetGradients(SeededGradients.ForStep(1, 5000));
        var error = Assert.Throws<IOException>(() => optimizer.Step());
        Assert.Contains("injected", error.Message);
        HostMemoryPool pool = optimizer.Pool;
        optimizer.Dispose();
        Assert.Equal(0, pool.OutstandingLeaseCount);
        Assert.True(store!.Disposed);
    }

    [Fact]
    public void CorruptReadIsCaughtWhenIntegrityCheckingIsOn()
    {
        using var parameters = new TestParameters(new long[] { 5000 }, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, 5000));
        using var optimizer = PartitionedOptimizer.Create(parameters.Parameters,
            new PartitionedOptimizerOptions { SubGroupElementCount = 1024, Tier = StateTier.MemorySwap, VerifySwapIntegrity = true },
            extents => new FailingStore(extents, failOnWrite: -1, corruptReadOfExtent: 3));
        parameters.SetGradients(SeededGradients.ForStep(1, 5000));
        var error = Assert.Throws<IOException>(() => optimizer.Step());
        Assert.Contains("Swap extent 3", error.Message);
    }

    [Fact]
    public void IntegrityCheckingLeavesResultsUnchanged()
    {
        var results = new List<byte[]>();
        foreach (bool verify in new[] { false, true })
        {
            using var parameters = new TestParameters(new long[] { 5000 }, ElementType.BFloat16, ElementType.BFloat16, SeededGradients.Uniform(1, 5000));
            using var optimizer = PartitionedOptimizer.Create(parameters.Parameters,
                new PartitionedOptimizerOptions { SubGroupElementCount = 1024, Tier = StateTier.MemorySwap, VerifySwapIntegrity = verify });
            for (int step = 1; step <= 3; step++)
            {
                parameters.SetGradients(SeededGradients.ForStep(step, 5000));
                optimizer.Step();
            }
            results.Add(parameters.WeightBytes());
        }
        Assert.Equal(results[0], results[1]);
    }

    [Fact]
    public void BufferStateMachineRejectsReuseDuringAWrite()
    {
        // a buffer whose write completed may be evicted and read into; one whose write is in flight may not
        Assert.True(RingSlot.IsAllowed(RingSlotState.Writing, RingSlotState.Cached) && RingSlot.IsAllowed(RingSlotState.Cached, RingSlotState.Free)
            && RingSlot.IsAllowed(RingSlotState.Free, RingSlotState.Reading));
        Assert.False(RingSlot.IsAllowed(RingSlotState.Writing, RingSlotState.Reading));
        Assert.False(RingSlot.IsAllowed(RingSlotState.Writing, RingSlotState.InUse));
        Assert.False(RingSlot.IsAllowed(RingSlotState.Reading, RingSlotState.InUse));
        Assert.False(RingSlot.IsAllowed(RingSlotState.Free, RingSlotState.Writing));
    }

    private sealed class FailingStore : ISwapStore
    {
        private readonly MemorySwapStore _inner;
        private readonly int _failOnWrite;
        private readonly int _corruptReadOfExtent;
        private int _writes;

        public FailingStore(IReadOnlyList<long> extents, int failOnWrite, int corruptReadOfExtent = -1)
        {
            _inner = new MemorySwapStore(extents);
            _failOnWrite = failOnWrite;
            _corruptReadOfExtent = corruptReadOfExtent;
        }

        public bool Disposed { get; private set; }

        public string Description => "failing";

        public int ExtentCount => _inner.ExtentCount;

        public long BytesRead => _inner.BytesRead;

        public long BytesWritten => _inner.BytesWritten;

        public long ExtentByteCount(int extent) => _inner.ExtentByteCount(extent);

        public async ValueTask ReadAsync(int extent, HostLease buffer)
        {
            await _inner.ReadAsync(extent, buffer);
            if (extent == _corruptReadOfExtent)
                FlipBit(buffer);
        }

        private static unsafe void FlipBit(HostLease buffer) => buffer.Pointer[777] ^= 0x04;

        public async ValueTask WriteAsync(int extent, HostLease buffer)
        {
            if (Interlocked.Increment(ref _writes) == _failOnWrite)
            {
                await Task.Delay(10);
                throw new IOException($"injected write failure on extent {extent}");
            }
            await _inner.WriteAsync(extent, buffer);
        }

        public void Dispose()
        {
            _inner.Dispose();
            Disposed = true;
        }
    }
}
