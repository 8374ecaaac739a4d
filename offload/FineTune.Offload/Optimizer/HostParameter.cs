using FineTune.Offload.Adam;
using FineTune.Torch;

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

    /// <summary>
    /// Binds a parameter held in torch tensors: contiguous CPU tensors (a model's pinned host copies), weights fp32,
    /// bf16 or f16, gradients fp32 or bf16. The tensors must outlive the optimizer and never be reallocated.
    /// </summary>
    public static HostParameter FromTensors(string name, Tensor weight, Tensor gradient)
    {
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(gradient);
        if (!weight.Device.IsCpu || !gradient.Device.IsCpu || !weight.IsContiguous || !gradient.IsContiguous)
            throw new ArgumentException($"Parameter '{name}': weight and gradient must be contiguous CPU tensors.", nameof(weight));
        if (weight.NumElements != gradient.NumElements)
            throw new ArgumentException($"Parameter '{name}': weight has {weight.NumElements} elements but its gradient {gradient.NumElements}.", nameof(gradient));
        return new HostParameter(name, weight.NumElements, weight.DataPointer, ToElementType(name, weight.DType), gradient.DataPointer, ToElementType(name, gradient.DType));
    }

    private static ElementType ToElementType(string name, DType dtype) => dtype switch
    {
        DType.Float32 => ElementType.Float32,
        DType.BFloat16 => ElementType.BFloat16,
        DType.Float16 => ElementType.Float16,
        _ => throw new ArgumentException($"Parameter '{name}': dtype {dtype} is not fp32, bf16 or f16."),
    };
}
