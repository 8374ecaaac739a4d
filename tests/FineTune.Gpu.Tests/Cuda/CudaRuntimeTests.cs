using System.Runtime.InteropServices;
using FineTune.Torch;
using Xunit;
using CudaApi = FineTune.Torch.Cuda;

namespace FineTune.Gpu.Tests.Cuda;

using Torch = FineTune.Torch.Torch;

/// <summary>
/// CUDA paths of the binding: tensor round trips, streams and events, host registration, memory statistics. They run
/// on a GPU machine with a CUDA-built shim (tools/gpu-check.sh) and skip themselves elsewhere; the CPU-build
/// behaviour is FineTune.Torch.Tests' WithoutCudaTests.
/// </summary>
public sealed class CudaRuntimeTests(ITestOutputHelper output)
{
    [CudaFact]
    public void TensorRoundTripsThroughTheDevice()
    {
        using var scope = TensorScope.Enter();
        var host = Torch.FromArray(new float[] { 1, 2, 3, 4, 5, 6 }, [2, 3]);
        var device = host.To(Device.Cuda(0));
        Assert.Equal(Device.Cuda(0), device.Device);
        var doubled = (device * 2.0).To(Device.Cpu, DType.Float64);
        Assert.Equal(new double[] { 2, 4, 6, 8, 10, 12 }, doubled.ToArray<double>());
        // Span copies work directly on device tensors (libtorch copies through the host).
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, device.ToArray<float>());
        var w = Torch.Ones([3, 1], DType.Float32, Device.Cuda(0));
        w.RequiresGrad = true;
        Torch.MatMul(device, w).Sum().Backward();
        // d sum(x w) / dw = column sums of x = [5, 7, 9]
        Assert.Equal(new float[] { 5, 7, 9 }, w.Grad!.ToArray<float>());
    }

    [CudaFact]
    public void StreamsAndEventsOrderAndTimeWork()
    {
        using var scope = TensorScope.Enter();
        Assert.True(CudaApi.DeviceCount >= 1);
        using var stream = CudaStream.Create(0);
        using var start = new CudaEvent();
        using var end = new CudaEvent();
        Tensor product;
        using (stream.MakeCurrent())
        {
            start.Record(stream);
            var a = Torch.Ones([1024, 1024], DType.Float32, Device.Cuda(0));
            product = Torch.MatMul(a, a);
            end.Record(stream);
        }
        using var main = CudaStream.Current(0);
        end.Wait(main);
        end.Synchronize();
        Assert.True(end.IsCompleted);
        stream.Synchronize();
        Assert.True(stream.IsIdle);
        var elapsed = start.ElapsedMilliseconds(end);
        output.WriteLine($"1024^3 matmul on a side stream: {elapsed:F3} ms");
        Assert.True(elapsed > 0);
        Assert.Equal(1024f, product.Narrow(0, 0, 1).Narrow(1, 0, 1).Item<float>());
    }

    [CudaFact]
    public unsafe void HostRegisteredBufferCopiesAsynchronously()
    {
        using var scope = TensorScope.Enter();
        const int elementCount = 1 << 20;
        const long byteCount = elementCount * sizeof(float);
        var memory = NativeMemory.AlignedAlloc((nuint)byteCount, 4096);
        try
        {
            var pointer = (IntPtr)memory;
            CudaApi.HostRegister(pointer, byteCount);
            try
            {
                var host = Torch.FromPointer(pointer, [elementCount], DType.Float32);
                host.FillInPlace(1.5);
                var device = Torch.Empty([elementCount], DType.Float32, Device.Cuda(0));
                device.CopyFrom(host, nonBlocking: true);
                host.FillInPlace(0);
                CudaApi.Synchronize(0);
                host.CopyFrom(device, nonBlocking: true);
                CudaApi.Synchronize(0);
                Assert.Equal(1.5 * elementCount, host.Sum().Item<double>());
                var stats = CudaApi.MemoryStats(0);
                output.WriteLine($"allocated {stats.AllocatedByteCount} B, reserved {stats.ReservedByteCount} B, free {stats.FreeByteCount} of {stats.TotalByteCount} B");
                Assert.True(stats.AllocatedByteCount >= byteCount);
                Assert.True(stats.ReservedByteCount >= stats.AllocatedByteCount);
                Assert.True(stats.TotalByteCount > stats.FreeByteCount);
                host.Dispose();
            }
            finally
            {
                CudaApi.HostUnregister(pointer);
            }
        }
        finally
        {
            NativeMemory.AlignedFree(memory);
        }
    }

    [CudaFact]
    public void AnEventNeverRecordedIsCompleteAndElapsedTimeNeedsTimedEvents()
    {
        using var scope = TensorScope.Enter();
        using var stream = CudaStream.Create(0);
        using var never = new CudaEvent();
        Assert.True(never.IsCompleted);
        never.Wait(stream);        // nothing to wait for
        never.Synchronize();
        using var untimed = new CudaEvent(enableTiming: false);
        using var timed = new CudaEvent();
        untimed.Record(stream);
        timed.Record(stream);
        stream.Synchronize();
        Assert.Contains("timing enabled", Assert.Throws<TorchException>(() => untimed.ElapsedMilliseconds(timed)).Message);
    }
}
