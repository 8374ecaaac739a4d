using FineTune.Offload.Adam;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// A named parameter as the optimizer sees it: its element count, the host memory of its low-precision weights
/// (written after every update) and of its gradients (read by every step). The memory belongs to the caller
/// (a model's pinned buffers, or a CPU tensor's storage) and must stay valid and in place for the optimizer's life.
/// The fp32 master starts from <see cref="InitialMaster"/> when given, else from the weights themselves.
/// </summary>
public sealed record HostParameter(
    string Name,
    long ElementCount,
    nint Weight,
    ElementType WeightType,
    nint Gradient,
    ElementType GradientType)
{
    /// <summary>Optional fp32 starting values (ElementCount floats), e.g. the unrounded weights.</summary>
    public nint InitialMaster { get; init; }
}
