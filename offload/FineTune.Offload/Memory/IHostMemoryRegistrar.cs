namespace FineTune.Offload.Memory;

/// <summary>
/// Registers host memory with an accelerator driver so device copies from it are DMA transfers
/// (cudaHostRegister). The pool calls it once per allocation at the allocation's exact size and unregisters
/// before freeing. Implemented over the torch binding when a CUDA device is present; absent otherwise.
/// </summary>
public interface IHostMemoryRegistrar
{
    unsafe void Register(void* pointer, long byteCount);

    unsafe void Unregister(void* pointer);
}
