using FineTune.Torch;
using Xunit;

namespace FineTune.Torch.Tests.Cuda;

/// <summary>A fact about the CPU-only build (CUDA compiled out); skipped where the shim was built with CUDA.</summary>
public sealed class WithoutCudaFactAttribute : FactAttribute
{
    public WithoutCudaFactAttribute()
    {
        if (Torch.BuiltWithCuda)
        {
            Skip = "the native shim was built with CUDA; the CUDA tests cover this build";
        }
    }
}
