using FineTune.Torch.Distributed;
using Xunit;

namespace FineTune.Torch.Tests.Distributed;

/// <summary>A fact about a shim without NCCL (CPU libtorch, or no nccl.h); skipped where NCCL is built in.</summary>
public sealed class WithoutNcclFactAttribute : FactAttribute
{
    public WithoutNcclFactAttribute()
    {
        if (ProcessGroup.IsBackendAvailable(DistributedBackend.Nccl))
            Skip = "the native shim was built with NCCL; the NCCL tests cover this build";
    }
}
