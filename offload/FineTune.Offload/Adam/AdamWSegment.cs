namespace FineTune.Offload.Adam;

/// <summary>
/// One contiguous run of elements for the fused AdamW pass: where its fp32 master, m and v live (a sub-group's
/// state buffer), where its gradients are read from and where its low-precision weight copy is written (the
/// parameter's own host memory). Pointers are raw addresses of memory the caller keeps alive for the call.
/// </summary>
public readonly record struct AdamWSegment(
    nint Master,
    nint FirstMoment,
    nint SecondMoment,
    nint Gradient,
    ElementType GradientType,
    nint Weight,
    ElementType WeightType,
    long ElementCount);
