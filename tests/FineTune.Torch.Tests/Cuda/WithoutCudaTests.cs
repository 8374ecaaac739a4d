using FineTune.Torch;
using Xunit;
using CudaApi = FineTune.Torch.Cuda;

namespace FineTune.Torch.Tests.Cuda;

/// <summary>
/// The CUDA API of a CPU-only build: every call says it was built without CUDA and the process keeps working. The
/// CUDA paths themselves are tests/FineTune.Gpu.Tests, run on a GPU machine by tools/gpu-check.sh.
/// </summary>
public sealed class WithoutCudaTests
{
    [WithoutCudaFact]
    public void WithoutCudaEveryCudaCallSaysSo()
    {
        Assert.False(CudaApi.IsAvailable);
        Assert.Equal(0, CudaApi.DeviceCount);
        Assert.Contains("built without CUDA", Assert.Throws<TorchException>(() => CudaStream.Create(0)).Message);
        Assert.Contains("built without CUDA", Assert.Throws<TorchException>(() => new CudaEvent()).Message);
        Assert.Contains("built without CUDA", Assert.Throws<TorchException>(() => CudaApi.HostRegister(1, 4096)).Message);
        Assert.Contains("built without CUDA", Assert.Throws<TorchException>(() => CudaApi.MemoryStats(0)).Message);
        Assert.Contains("built without CUDA", Assert.Throws<TorchException>(() => CudaApi.Synchronize(0)).Message);
        // libtorch itself refuses CUDA tensors; the process keeps working
        Assert.Throws<TorchException>(() => Torch.Zeros([2], DType.Float32, Device.Cuda(0)));
        using var scope = TensorScope.Enter();
        Assert.Equal(2.0, Torch.Ones([2]).Sum().Item<double>());
    }
}
