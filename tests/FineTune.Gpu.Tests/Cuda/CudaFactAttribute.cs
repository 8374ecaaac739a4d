using System.Runtime.CompilerServices;
using FineTune.Torch;
using Xunit;

namespace FineTune.Gpu.Tests.Cuda;

using Torch = FineTune.Torch.Torch;

/// <summary>A fact that runs only where the shim was built with CUDA and a CUDA device is present; otherwise it is skipped with the reason.</summary>
public sealed class CudaFactAttribute : FactAttribute
{
    public CudaFactAttribute([CallerFilePath] string? sourceFilePath = null, [CallerLineNumber] int sourceLineNumber = -1)
        : base(sourceFilePath, sourceLineNumber)
    {
        if (!Torch.BuiltWithCuda)
        {
            Skip = $"the native shim was built against a CPU libtorch ({Torch.LibTorchVersion}); build with FINETUNE_LIBTORCH=<CUDA libtorch> to run CUDA tests";
        }
        else if (!FineTune.Torch.Cuda.IsAvailable)
        {
            Skip = "no CUDA device is available on this machine";
        }
    }
}
