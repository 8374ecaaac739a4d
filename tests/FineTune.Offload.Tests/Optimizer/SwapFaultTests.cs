using FineTune.Offload.Adam;
using FineTune.Offload.Memory;
using FineTune.Offload.Optimizer;
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
    public void BufferStateMachineRejectsReuseDuringAWrite()
    {
        Assert.True(SwapSlot.IsAllowed(SwapBufferState.OnDisk, SwapBufferState.ReadInFlight));
        Assert.False(SwapSlot.IsAllowed(SwapBufferState.WriteInFlight, SwapBufferState.ReadInFlight));
        Assert.False(SwapSlot.IsAllowed(SwapBufferState.WriteInFlight, SwapBufferState.Filling));
        Assert.False(SwapSlot.IsAllowed(SwapBufferState.ReadInFlight, SwapBufferState.Filling));
        Assert.False(SwapSlot.IsAllowed(SwapBufferState.Free, SwapBufferState.WriteInFlight));
    }

    private sealed class FailingStore : ISwapStore
    {
        private readonly MemorySwapStore _inner;
        private readonly int _failOnWrite;
        private int _writes;

        public FailingStore(IReadOnlyList<long> extents, int failOnWrite)
        {
            _inner = new MemorySwapStore(extents);
            _failOnWrite = failOnWrite;
        }

        public bool Disposed { get; private set; }

        public string Description => "failing";

        public int ExtentCount => _inner.ExtentCount;

        public long BytesRead => _inner.BytesRead;

        public long BytesWritten => _inner.BytesWritten;

        public long ExtentByteCount(int extent) => _inner.ExtentByteCount(extent);

        public ValueTask ReadAsync(int extent, HostLease buffer) => _inner.ReadAsync(extent, buffer);

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
