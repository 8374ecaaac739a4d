using FineTune.Offload.Adam;
using FineTune.Offload.Parameters;
using FineTune.Torch;

namespace FineTune.Offload.Gradients;

/// <summary>
/// The global norm of gradients that are never all in memory at once: one fp64 partial sum of squares per (parameter,
/// 64 Ki-element chunk), recorded when a final gradient piece is known and summed in ascending order, so the result
/// equals <see cref="GradientNorm.SumOfSquares"/> over fp32 accumulators bit for bit. A piece must start on a chunk and
/// end on one or at its parameter's end (row blocks start on chunk boundaries), so a chunk never spans two pieces.
/// </summary>
public sealed class GradientNormPartials
{
    private readonly ParameterLayout _layout;
    private readonly double[][] _partials;

    public GradientNormPartials(ParameterLayout layout)
    {
        _layout = layout;
        _partials = layout.Parameters.Select(p => new double[(p.ElementCount + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount]).ToArray();
    }

    /// <summary>
    /// Checks that <paramref name="gradient"/> is elements [<paramref name="offset"/>, offset + n) of
    /// <paramref name="parameter"/>'s gradient on whole chunks (contiguous, CPU), and records its partials (parallel,
    /// on the calling thread).
    /// </summary>
    public void Record(int parameter, long offset, Tensor gradient)
    {
        ElementType type = ElementTypeExtensions.FromDType(gradient.DType);
        long count = gradient.NumElements, total = _layout.Parameters[parameter].ElementCount;
        if (!gradient.IsContiguous || !gradient.Device.IsCpu || offset < 0 || offset + count > total || offset % CpuAdamW.ChunkElementCount != 0
            || ((offset + count) % CpuAdamW.ChunkElementCount != 0 && offset + count != total))
            throw new ArgumentException($"The gradient piece [{offset}, {offset + count}) of parameter {parameter} must be a contiguous CPU tensor on whole norm chunks.", nameof(gradient));
        nint data = gradient.DataPointer;
        double[] partials = _partials[parameter];
        long firstChunk = offset / CpuAdamW.ChunkElementCount;
        Parallel.For(0, (count + CpuAdamW.ChunkElementCount - 1) / CpuAdamW.ChunkElementCount, c =>
        {
            long start = c * CpuAdamW.ChunkElementCount;
            partials[firstChunk + c] = GradientNorm.SumOfSquaresChunk(data + (nint)(start * type.ByteCount()), type, Math.Min(CpuAdamW.ChunkElementCount, count - start));
        });
    }

    /// <summary>The partials of every parameter, in ascending order (once every gradient of the step was recorded).</summary>
    public double Sum()
    {
        double total = 0;
        foreach (double[] partials in _partials)
            foreach (double partial in partials)
                total += partial;
        return total;
    }
}
