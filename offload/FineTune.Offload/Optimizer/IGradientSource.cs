using FineTune.Offload.Adam;

namespace FineTune.Offload.Optimizer;

/// <summary>
/// Where <see cref="PartitionedOptimizer"/> reads gradients: the memory of each sub-group segment's gradients, and the
/// streaming sum of squares over all of them (the global norm and overflow check). The default reads the
/// <see cref="HostParameter.Gradient"/> buffers; the ZeRO-Infinity baseline (offload/Bench) stages them through an
/// fp32 copy first. Read from the optimizer's flow, while the gradients do not change.
/// </summary>
public interface IGradientSource
{
    /// <summary>The gradients of <paramref name="segment"/> (of <paramref name="group"/>): where, and their type.</summary>
    (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment);

    /// <summary>Sum of squares of every gradient element (fp64, fixed chunking: independent of thread count).</summary>
    double SumOfSquares(int maxDegreeOfParallelism);

    /// <summary>
    /// The bf16 weights of <paramref name="segment"/> before this step, if the source carries them with the gradients
    /// (backward had them in memory); 0: the optimizer finds them itself. Read by updates of residual masters.
    /// </summary>
    nint PreviousWeights(SubGroup group, SubGroupSegment segment) => 0;

    /// <summary>The update of <paramref name="group"/> is done with its gradients (a streamed source frees them).</summary>
    void Release(SubGroup group) { }
}
