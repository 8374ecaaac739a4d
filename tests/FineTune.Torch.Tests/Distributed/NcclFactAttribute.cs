using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>A fact that runs only where the shim has NCCL (a CUDA libtorch and nccl.h) and a CUDA device is present.</summary>
public sealed class NcclFactAttribute : FactAttribute
{
    public NcclFactAttribute()
    {
        if (!ProcessGroup.IsBackendAvailable(DistributedBackend.Nccl))
            Skip = $"the native shim has no NCCL (built against {(Torch.BuiltWithCuda ? "a CUDA libtorch without nccl.h" : $"the CPU libtorch {Torch.LibTorchVersion}")}); build with FINETUNE_LIBTORCH=<CUDA libtorch> to run NCCL tests";
        else if (!FineTune.Torch.Cuda.IsAvailable)
            Skip = "no CUDA device is available on this machine";
    }
}
