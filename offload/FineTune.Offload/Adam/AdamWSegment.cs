namespace FineTune.Offload.Adam;

/// <summary>
/// One contiguous run of elements for the fused AdamW pass: where its fp32 master, m and v live (a sub-group's
/// state buffer), where its gradients are read from and where its low-precision weight copy is written (the
/// parameter's own host memory). Pointers are raw addresses of memory the caller keeps alive for the call.
/// With <see cref="Residual"/> the master is not stored whole (<see cref="MasterResidual"/>): Master is 0, the
/// master is read from <see cref="PreviousWeight"/> (the bf16 weights before the step; it may be Weight itself) and
/// the residual, and the residual is rewritten beside the new weight.
/// </summary>
public readonly record struct AdamWSegment(
    nint Master,
    nint FirstMoment,
    nint SecondMoment,
    nint Gradient,
    ElementType GradientType,
    nint Weight,
    ElementType WeightType,
    long ElementCount)
{
    /// <summary>The masters' 16-bit residuals (int16 per element); 0: the fp32 masters are at <see cref="Master"/>.</summary>
    public nint Residual { get; init; }

    /// <summary>The bf16 weights the masters round to before this step (with <see cref="Residual"/>).</summary>
    public nint PreviousWeight { get; init; }
}
