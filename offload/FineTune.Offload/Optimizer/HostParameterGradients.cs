using FineTune.Offload.Adam;

namespace FineTune.Offload.Optimizer;

/// <summary>The default <see cref="IGradientSource"/>: each parameter's own gradient buffer, read in place.</summary>
internal sealed class HostParameterGradients(IReadOnlyList<HostParameter> parameters) : IGradientSource
{
    public (nint Pointer, ElementType Type) Gradient(SubGroup group, SubGroupSegment segment)
    {
        HostParameter p = parameters[segment.Parameter];
        return (p.Gradient + (nint)(segment.ParameterOffset * p.GradientType.ByteCount()), p.GradientType);
    }

    public double SumOfSquares(int maxDegreeOfParallelism) =>
        GradientNorm.SumOfSquares(parameters.Select(p => (p.Gradient, p.GradientType, p.ElementCount)).ToList(), maxDegreeOfParallelism);
}
