using FineTune.Torch.Native;

namespace FineTune.Torch;

/// <summary>
/// CUDA runtime services through libtorch: availability, synchronization, host-memory registration and the
/// caching allocator's statistics. In a shim built against a CPU libtorch, <see cref="IsAvailable"/> is false,
/// <see cref="DeviceCount"/> is 0 and everything else throws a <see cref="TorchException"/> saying so.
/// </summary>
public static class Cuda
{
    public static unsafe bool IsAvailable
    {
        get
        {
            int available;
            NativeMethods.Check(NativeMethods.ft_cuda_is_available(&available));
            return available != 0;
        }
    }

    public static unsafe int DeviceCount
    {
        get
        {
            int count;
            NativeMethods.Check(NativeMethods.ft_cuda_device_count(&count));
            return count;
        }
    }

    /// <summary>Waits for all work on the device (cudaDeviceSynchronize).</summary>
    public static void Synchronize(int deviceIndex = 0) => NativeMethods.Check(NativeMethods.ft_cuda_synchronize(deviceIndex));

    /// <summary>
    /// Page-locks caller-owned host memory in place (cudaHostRegister), so copies between it and the device run
    /// asynchronously at full bandwidth without a second pinned allocation. Unregister before freeing the memory.
    /// </summary>
    public static void HostRegister(IntPtr data, long byteCount) => NativeMethods.Check(NativeMethods.ft_cuda_host_register(data, byteCount));

    public static void HostUnregister(IntPtr data) => NativeMethods.Check(NativeMethods.ft_cuda_host_unregister(data));

    /// <summary>libtorch's caching-allocator counters and the driver's free/total memory for one device.</summary>
    public static unsafe CudaMemoryStats MemoryStats(int deviceIndex = 0)
    {
        var stats = stackalloc long[6];
        NativeMethods.Check(NativeMethods.ft_cuda_memory_stats(deviceIndex, stats));
        return new CudaMemoryStats(stats[0], stats[1], stats[2], stats[3], stats[4], stats[5]);
    }
}
