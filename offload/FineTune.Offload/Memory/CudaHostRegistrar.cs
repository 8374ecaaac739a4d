using FineTune.Torch;

namespace FineTune.Offload.Memory;

/// <summary>
/// Registers pool memory with the CUDA driver (cudaHostRegister through the torch shim) so host-device copies from
/// it are DMA transfers without a second pinned copy. Use <see cref="IfAvailable"/>: null on machines without CUDA.
/// </summary>
public sealed class CudaHostRegistrar : IHostMemoryRegistrar
{
    private CudaHostRegistrar() { }

    /// <summary>A registrar when libtorch was built with CUDA and a device is present; otherwise null.</summary>
    public static CudaHostRegistrar? IfAvailable() => Torch.Torch.BuiltWithCuda && Cuda.IsAvailable ? new CudaHostRegistrar() : null;

    public unsafe void Register(void* pointer, long byteCount) => Cuda.HostRegister((nint)pointer, byteCount);

    public unsafe void Unregister(void* pointer) => Cuda.HostUnregister((nint)pointer);
}
